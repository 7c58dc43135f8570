"""pytest plugin (``pytest11`` entry point): ``pytest --endpoint URL`` runs the conformance suite against URL.

Inert without ``--endpoint`` (or the ``conformance_endpoints`` ini key): options are registered, nothing else
happens. With it, the plugin adds the suite module to the collection, grades results by tier (SHOULD failures
become "non-strict" xfails unless ``--conformance-strict``), and writes ``report.json`` + ``junit.xml``.
Exit codes: 0 every MUST passed, 1 a check failed, 2 could not run (endpoint unreachable, bad options).

This subpackage is the harness's pytest edge: the hooks and fixtures here, tier grading in ``_grading``,
the report.json document in ``_reporting``, and ``gym-conformance run`` (``cli``), which calls ``pytest.main``.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

SUITE = Path(__file__).parents[1] / "suite" / "test_conformance.py"


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("gym-conformance", "NeMo Gym conformance of an OpenAI-compatible generation endpoint")
    g.addoption("--endpoint", action="append", default=[], metavar="URL",
                help="endpoint base URL (…/v1); repeat for one server per data-parallel rank")
    g.addoption("--model", default=None, help="served model name (default: first id from /v1/models)")
    g.addoption("--api-key", default=None, help="bearer key (default: $OPENAI_API_KEY, else dummy_key)")
    g.addoption("--tokenizer", default=None, metavar="PATH_OR_NAME",
                help="local Hugging Face tokenizer for template-level checks (skipped without it)")
    g.addoption("--rescore-model", default=None, metavar="PATH",
                help="local Hugging Face model holding the trainer's current weights: M24 teacher-forces with it "
                     "instead of the endpoint's /v1/completions (catches an endpoint serving stale weights)")
    g.addoption("--refit-url", default=None, metavar="URL",
                help='R8: POST {"path": <--rescore-model>} here to make the endpoint load the trainer\'s weights, '
                     "then check that served log probs follow them (skipped without it)")
    g.addoption("--conformance-strict", action="store_true", default=None,
                help="SHOULD-level failures fail the run")
    g.addoption("--conformance-report", default=None, metavar="DIR", help="report directory (default: reports/)")
    g.addoption("--check", action="append", default=[], metavar="ID", help="run only these check ids (E4, M1, …)")
    g.addoption("--chat-template-kwargs", default=None, metavar="JSON",
                help='chat_template_kwargs sent on every call, e.g. \'{"enable_thinking": false}\'')
    g.addoption("--gym-version", default=None, metavar="VERSION",
                help="which NeMo Gym the client reproduces (0.4.0, 0.7.0; default: the newest verified)")
    g.addoption("--gym-reasoning-parser", default=None, choices=["on", "off"],
                help="Gym's uses_reasoning_parser, which must match the endpoint's reasoning parser (default: on)")
    g.addoption("--conformance-timeout", type=float, default=None, metavar="SECONDS",
                help="per-request timeout, also the retry budget for 429/5xx (default 60)")
    parser.addini("conformance_endpoints", "endpoint base URLs", type="linelist", default=[])
    parser.addini("conformance_model", "served model name", default="")
    parser.addini("conformance_tokenizer", "local tokenizer for template-level checks", default="")
    parser.addini("conformance_rescore_model", "local model for M24's teacher-forced rescoring", default="")
    parser.addini("conformance_refit_url", "R8's weight-refit hook (POST {path})", default="")
    parser.addini("conformance_strict", "SHOULD-level failures fail the run", type="bool", default=False)
    parser.addini("conformance_report", "report directory", default="reports")
    parser.addini("conformance_checks", "check ids to run", type="linelist", default=[])
    parser.addini("conformance_timeout", "per-request timeout in seconds", default="60")
    parser.addini("conformance_gym_version", "NeMo Gym version the client reproduces", default="")
    parser.addini("conformance_gym_reasoning_parser", "Gym's uses_reasoning_parser: on or off", default="on")
    parser.addini("conformance_chat_template_kwargs", "JSON chat_template_kwargs sent on every call", default="")


class _Session:
    """One run's state on the controller (and each xdist worker), registered with pytest's plugin manager as
    ``gym-conformance-session`` in ``pytest_configure``; its methods are the hooks that need that state."""

    def __init__(self, config: pytest.Config, endpoints: list[str]) -> None:
        opt, ini = config.getoption, config.getini
        self.config = config
        self.endpoints = endpoints
        self.model = opt("model") or ini("conformance_model") or None
        self.api_key = opt("api_key") or os.environ.get("OPENAI_API_KEY") or "dummy_key"
        self.tokenizer = opt("tokenizer") or ini("conformance_tokenizer") or None
        self.rescore_model = opt("rescore_model") or ini("conformance_rescore_model") or None
        self.refit_url = opt("refit_url") or ini("conformance_refit_url") or None
        strict = opt("conformance_strict")
        self.strict = bool(ini("conformance_strict") if strict is None else strict)
        base = opt("conformance_report") or ini("conformance_report") or "reports"
        self.report_dir = Path(config.invocation_params.dir, base)
        self.checks = [c.upper() for c in (opt("check") or ini("conformance_checks"))]
        self.timeout_raw = opt("conformance_timeout") or ini("conformance_timeout")
        self.kwargs_raw = opt("chat_template_kwargs") or ini("conformance_chat_template_kwargs") or "{}"
        self.chat_template_kwargs: dict[str, Any] = {}
        self.gym_version = opt("gym_version") or ini("conformance_gym_version") or None
        self.reasoning_parser_raw = opt("gym_reasoning_parser") or ini("conformance_gym_reasoning_parser") or "on"
        self.profile = _option(config, "hypothesis_profile")
        seed = _option(config, "hypothesis_seed")
        self.seed = int(seed) if seed is not None and str(seed).lstrip("-").isdigit() else None
        self.is_worker = hasattr(config, "workerinput")
        self.started, self.t0 = "", 0.0
        self.aborted: str | None = None  # why the run could not run, for the report's one "error" result
        self.results: list[dict[str, Any]] = []
        self.contexts: dict[str, Any] = {}
        self.runner: Any = None
        self.previous_profile: Any = None

    def context(self, endpoint: str):
        if endpoint not in self.contexts:
            from ..checks import Context, Target
            from ..client import Runner
            self.runner = self.runner or Runner()
            ctx = Context(Target(endpoint, model=self.model, api_key=self.api_key, tokenizer=self.tokenizer,
                                 strict=self.strict, timeout=self.timeout, rescore_model=self.rescore_model,
                                 refit_url=self.refit_url, gym_version=self.gym_version,
                                 reasoning_parser=self.reasoning_parser_raw == "on",
                                 chat_template_kwargs=self.chat_template_kwargs), self.runner)
            ctx.hypothesis_seed = self.seed
            self.contexts[endpoint] = ctx
        return self.contexts[endpoint]

    def close(self) -> None:
        for ctx in self.contexts.values():
            self.runner.run(ctx.aclose())  # also ends the reference tokenizer's gc freeze
        if self.runner is not None:
            self.runner.close()

    def abort(self, message: str) -> None:
        """Could not run: one clear line on stderr and exit code 2 (never a traceback)."""
        self.aborted = message
        if not self.is_worker and self.started:
            # Aborting in sessionstart skips pytest_sessionfinish: write the could-not-run report here.
            _grading.write_report(self, message)
        _exit(message)

    # -- hooks that need the run's state -------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.started, self.t0 = _now(), time.monotonic()
        if self.is_worker:
            return
        import httpx
        from ..client import split_base
        for url in self.endpoints:
            api, _ = split_base(url)
            try:  # Gym's readiness rule: any HTTP response (even 401/404) means the server is up
                httpx.get(api + "/models", timeout=10.0, headers={"Authorization": f"Bearer {self.api_key}"})
            except Exception as exc:  # noqa: BLE001 - whatever the transport raises, the endpoint is not up
                self.abort(f"endpoint {url} unreachable: {type(exc).__name__}: {exc or 'no response'}")

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "conformance_endpoint" in metafunc.fixturenames:
            ids = [u.split("://", 1)[-1].rstrip("/") for u in self.endpoints]
            metafunc.parametrize("conformance_endpoint", self.endpoints, ids=ids, scope="session")

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        from ..core import CATALOGUE
        keep, drop = [], []
        for item in items:
            mark = item.get_closest_marker("conformance_check")
            if mark is None:
                keep.append(item)
                continue
            spec = CATALOGUE[mark.args[0]]
            if self.checks and spec.id not in self.checks:
                drop.append(item)
                continue
            item.user_properties += [("check_id", spec.id), ("tier", spec.tier)]
            keep.append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = getattr(report, "conformance", None)
        if result and not self.is_worker:
            self.results.append(result)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.previous_profile:
            from hypothesis import settings
            settings.load_profile(self.previous_profile)  # in-process runs (pytester) must not leak our profile
        config.pluginmanager.unregister(self)


def _session(config: pytest.Config) -> _Session | None:
    """The run's session object (None when the plugin is inert)."""
    return config.pluginmanager.get_plugin(_grading.SESSION)


def _option(config: pytest.Config, name: str) -> Any:
    try:
        return config.getoption(name)
    except ValueError:  # hypothesis' pytest plugin disabled (-p no:hypothesispytest)
        return None


def _exit(message: str) -> None:
    pytest.exit(f"gym-conformance: {message}", returncode=2)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    endpoints = config.getoption("endpoint") or config.getini("conformance_endpoints")
    if not endpoints:
        return
    from ..core import CATALOGUE
    state = _Session(config, list(endpoints))
    for url in state.endpoints:
        if not url.startswith(("http://", "https://")):
            _exit(f"--endpoint {url!r} is not an http(s) URL")
    from ..checks import CHECKS
    unknown = [c for c in state.checks if c not in CHECKS]
    if unknown:
        kind = "not implemented" if all(c in CATALOGUE for c in unknown) else "unknown"
        _exit(f"{kind} check id(s) {', '.join(unknown)}; implemented: {', '.join(CHECKS)}")
    try:
        state.timeout = float(state.timeout_raw)
        if state.timeout <= 0:
            raise ValueError
    except (TypeError, ValueError):
        _exit(f"conformance timeout must be a positive number of seconds, got {state.timeout_raw!r}")
    if state.tokenizer and not Path(state.tokenizer).exists() and os.environ.get("HF_HUB_OFFLINE") == "1":
        _exit(f"--tokenizer {state.tokenizer!r} does not exist and the hub is offline")
    if state.rescore_model and not (Path(state.rescore_model) / "config.json").is_file():
        _exit(f"--rescore-model {state.rescore_model!r} is not a local model directory (no config.json)")
    if state.refit_url and not state.rescore_model:
        _exit("--refit-url needs --rescore-model: R8 refits the endpoint to those weights and rescores with them")
    if state.refit_url and not state.refit_url.startswith(("http://", "https://")):
        _exit(f"--refit-url {state.refit_url!r} is not an http(s) URL")
    try:
        import json
        state.chat_template_kwargs = json.loads(state.kwargs_raw)
        if not isinstance(state.chat_template_kwargs, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        _exit(f"--chat-template-kwargs must be a JSON object: {exc}")
    from ..client import GYM_PROFILES
    if state.gym_version and state.gym_version not in GYM_PROFILES:
        _exit(f"--gym-version {state.gym_version!r} is not a verified NeMo Gym version; verified: "
              f"{', '.join(GYM_PROFILES)}")
    if state.reasoning_parser_raw not in ("on", "off"):
        _exit(f"conformance_gym_reasoning_parser must be on or off, got {state.reasoning_parser_raw!r}")
    from .. import strategies  # noqa: F401  registers the "ci" and "deep" hypothesis profiles
    if state.profile is None:
        from hypothesis import settings
        state.previous_profile = getattr(settings, "_current_profile", None)
        settings.load_profile("ci")  # bounded and deterministic unless the user picked a profile
        state.profile = "ci"
    config.pluginmanager.register(state, _grading.SESSION)
    config.addinivalue_line("markers", "conformance_check(id, variant): a gym-conformance check item")
    if str(SUITE) not in map(str, config.args):
        # An explicit file or directory argument keeps the user's own tests; a default run gets only the suite.
        from _pytest.config import Config as _C
        config.args = ([*config.args] if config.args_source == _C.ArgsSource.ARGS else []) + [str(SUITE)]
    if not state.is_worker and getattr(config.option, "xmlpath", None) is None:
        state.report_dir.mkdir(parents=True, exist_ok=True)
        config.option.xmlpath = str(state.report_dir / "junit.xml")


def _now() -> str:
    from ._reporting import now_iso
    return now_iso()


@pytest.fixture
def conformance_ctx(request: pytest.FixtureRequest, conformance_endpoint: str):
    """The shared check context of this endpoint (client, loop, reference tokenizer)."""
    return _session(request.config).context(conformance_endpoint)


@pytest.fixture
def conformance_info(request: pytest.FixtureRequest):
    """Record an INFO-tier observation on the running item (reported as outcome "info")."""
    def record(info) -> None:
        request.node.stash[_INFO] = info
    return record


_INFO = pytest.StashKey[Any]()


from . import _grading  # noqa: E402
from ._grading import (  # noqa: E402  hooks that grade and report live next door to keep this file small
    pytest_runtest_makereport, pytest_sessionfinish, pytest_terminal_summary)

__all__ = ["pytest_addoption", "pytest_configure", "pytest_runtest_makereport", "pytest_sessionfinish",
           "pytest_terminal_summary", "conformance_ctx", "conformance_info"]
