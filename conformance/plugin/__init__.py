"""pytest plugin (``pytest11`` entry point): ``pytest --endpoint URL`` runs the conformance suite against URL;
``pytest --rollouts PATH [--train-batches PATH]`` runs the loop checks on a training loop's dumps.

Inert without either (or their ini keys): options are registered, nothing else happens. With them, the plugin
adds the suite modules to the collection (the endpoint suite, the loop suite, or both), grades results by tier
(SHOULD failures become "non-strict" xfails unless ``--conformance-strict``), and writes ``report.json`` +
``junit.xml``. Exit codes: 0 every MUST passed, 1 a check failed, 2 could not run (endpoint unreachable, a dump
that cannot be read, bad options).

This subpackage is the harness's pytest edge: the hooks and fixtures here, the settings table every front end
is generated from in ``_settings``, tier grading in ``_grading``, the report.json document in ``_reporting``,
and ``gym-conformance run`` (``cli``, its terminal display in ``_console``), which calls ``pytest.main``.
No module-level state: one run's state is the :class:`_Session` registered with the plugin manager.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from ..core import redact_text, secrets_of
from ._settings import OPTIONS, SETTINGS_OWNERS, Settings, SettingsError, add_pytest_options, resolve

SUITE = Path(__file__).parents[1] / "suite" / "test_conformance.py"
LOOP_SUITE = Path(__file__).parents[1] / "suite" / "test_loop.py"
LOAD_SUITE = Path(__file__).parents[1] / "suite" / "test_load.py"
CONSOLE = "gym-conformance-console"  # a live display (``gym-conformance run`` registers one) the session informs
_CHECK_ID = re.compile(r"::test_([A-Z]+\d+)_")  # the suite names its items test_<ID>_<name>[<endpoint>]


def pytest_addoption(parser: pytest.Parser) -> None:
    add_pytest_options(parser)


class _Session:
    """One run's state on the controller (and each xdist worker), registered with pytest's plugin manager as
    ``gym-conformance-session`` in ``pytest_configure``; its methods are the hooks that need that state."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        # what the grading and reporting hooks read
        self.endpoints = list(settings.endpoints)
        self.model = settings.model
        self.tokenizer = settings.tokenizer
        self.strict = settings.strict
        self.checks = settings.checks
        self.report_dir = Path(config.invocation_params.dir, settings.report_dir)
        self.profile = settings.hypothesis_profile
        self.is_worker = hasattr(config, "workerinput")
        # the key's spellings, and credentials in the URLs, redacted from everything the run reports (an endpoint
        # may echo the key back; every report names its endpoint)
        self.secrets = secrets_of(settings.api_key, [*settings.endpoints, settings.refit_url or ""])
        self.started, self.t0 = "", 0.0
        self.aborted: str | None = None  # why the run could not run, for the report's one "error" result
        self.interrupted: str | None = None  # SIGTERM / SIGINT: the report is still written, marked so
        self.results: list[Any] = []
        self.contexts: dict[str, Any] = {}
        self.loop_outcomes: dict[str, Any] | None = None  # the loop checks' verdicts, from one pass at start
        self.runner: Any = None
        self.previous_profile: Any = None
        self._totals_sent = False

    def context(self, endpoint: str):
        if endpoint not in self.contexts:
            from ..checks import Context, Target
            from ..client import Runner
            s = self.settings
            self.runner = self.runner or Runner()
            ctx = Context(Target(endpoint, model=s.model, api_key=s.api_key, tokenizer=s.tokenizer,
                                 strict=s.strict, timeout=s.timeout, rescore_model=s.rescore_model,
                                 refit_url=s.refit_url, gym_version=s.gym_version,
                                 reasoning_parser=s.reasoning_parser, max_response_bytes=s.max_response_bytes,
                                 deadline=(self.t0 or time.monotonic()) + s.deadline if s.deadline else None,
                                 chat_template_kwargs=dict(s.chat_template_kwargs)), self.runner)
            ctx.hypothesis_seed = s.hypothesis_seed
            self.contexts[endpoint] = ctx
        return self.contexts[endpoint]

    def close(self) -> None:
        import signal
        for sig, handler in getattr(self, "_previous_handlers", {}).items():
            signal.signal(sig, handler)  # an in-process pytest run (pytester) leaves the host's handlers as they were
        self._previous_handlers = {}
        for ctx in self.contexts.values():
            self.runner.run(ctx.aclose())  # also ends the reference tokenizer's gc freeze
        if self.runner is not None:
            self.runner.close()

    def abort(self, message: str) -> None:
        """Could not run: one clear line on stderr and exit code 2 (never a traceback)."""
        message = redact_text(message, self.secrets)
        self.aborted = message
        if not self.is_worker and self.started:
            # Aborting in sessionstart skips pytest_sessionfinish: write the could-not-run report here.
            _grading.write_report(self, message)
        _exit(message)

    def _console(self) -> Any:
        return None if self.is_worker else self.config.pluginmanager.get_plugin(CONSOLE)

    # -- hooks that need the run's state -------------------------------------------------------------------

    @property
    def dumps(self) -> dict[str, str]:
        s = self.settings
        return {kind: str(path) for kind, path in (("rollouts", s.rollouts), ("batches", s.train_batches),
                                                   ("metrics", s.metrics)) if path}

    def judge_loop(self) -> None:
        """Run every loop check in one pass over the dumps, and the benchmark checks over the metrics; a file
        that cannot be read (or an unknown benchmark) ends the run (exit 2)."""
        from ..checks.loop import LoopSettings, judge, judge_curves
        s = self.settings
        self.loop_outcomes = {}
        try:
            if s.rollouts is not None:
                if s.tokenizer:
                    from ..checks import Reference
                    from ..checks.loop._tokenizer import tokenizer_mismatch
                    mismatch = tokenizer_mismatch(s.rollouts, Reference(s.tokenizer))
                    if mismatch:
                        self.abort(mismatch)
                self.loop_outcomes.update(judge(LoopSettings(s.rollouts, s.train_batches, advantage=s.loop_advantage,
                                                             truncation=s.loop_truncation, checks=s.checks)))
            if s.metrics is not None:
                self.loop_outcomes.update(judge_curves(s.metrics, s.benchmark))
        except ValueError as exc:  # DumpError (a file) or an unknown benchmark: one line, exit 2
            self.abort(str(exc))

    def _on_signal(self, signum: int, frame: Any) -> None:
        """SIGTERM (a CI job's timeout) ends the run as Ctrl-C does: pytest unwinds, the report is written."""
        import signal
        self.interrupted = signal.Signals(signum).name
        raise KeyboardInterrupt(self.interrupted)

    def catch_signals(self) -> None:
        """From configuration on (before collection), SIGTERM and SIGINT end the run with its report."""
        import signal
        import threading
        if not self.is_worker and threading.current_thread() is threading.main_thread():
            self._previous_handlers = {sig: signal.signal(sig, self._on_signal)
                                       for sig in (signal.SIGTERM, signal.SIGINT)}

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.started, self.t0 = _now(), time.monotonic()
        if self.settings.rollouts is not None or self.settings.metrics is not None:
            self.judge_loop()  # before any item: a bad dump is one line and exit 2, like an unreachable endpoint
        if self.is_worker:
            return
        import httpx
        from ..client import split_base
        for url in self.endpoints:
            api, _ = split_base(url)
            try:  # Gym's readiness rule: any HTTP response (even 401/404) means the server is up
                httpx.get(api + "/models", timeout=10.0, headers={"Authorization": f"Bearer {self.settings.api_key}"})
            except Exception as exc:  # noqa: BLE001 - whatever the transport raises, the endpoint is not up
                self.abort(f"endpoint {url} unreachable: {type(exc).__name__}: {exc or 'no response'}")

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "conformance_endpoint" in metafunc.fixturenames:
            # item ids name the endpoint (junit names, the log, -k): the URL's credentials read as the marker there too
            ids = [redact_text(u.split("://", 1)[-1].rstrip("/"), self.secrets) for u in self.endpoints]
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

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._collected([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self._collected(ids)  # under xdist the controller collects nothing; every worker reports the same ids

    def _collected(self, nodeids: list[str]) -> None:
        console = self._console()
        if console is None or self._totals_sent:
            return
        self._totals_sent = True
        console.collected([m.group(1) for m in map(_CHECK_ID.search, nodeids) if m])

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        console, match = self._console(), _CHECK_ID.search(nodeid)
        if console is not None and match:
            console.started(match.group(1), nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = getattr(report, "conformance", None)
        if not result or self.is_worker:
            return
        self.results.append(result)
        console, match = self._console(), _CHECK_ID.search(report.nodeid)
        if console is not None and match:
            console.finished(match.group(1), report.nodeid, _outcome(result))

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.previous_profile:
            from hypothesis import settings
            settings.load_profile(self.previous_profile)  # in-process runs (pytester) must not leak our profile
        config.pluginmanager.unregister(self)


def _outcome(result: Any) -> str:
    """A graded result's outcome as text, whichever shape the grading hooks give it (mapping or object)."""
    value = result.get("outcome") if isinstance(result, dict) else getattr(result, "outcome", None)
    return str(getattr(value, "value", value))


def _session(config: pytest.Config) -> _Session | None:
    """The run's session object (None when the plugin is inert)."""
    return config.pluginmanager.get_plugin(_grading.SESSION)


def _option(config: pytest.Config, dest: str) -> Any:
    try:
        return config.getoption(dest)
    except ValueError:  # hypothesis' pytest plugin disabled (-p no:hypothesispytest)
        return None


def _exit(message: str) -> None:
    pytest.exit(f"gym-conformance: {message}", returncode=2)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    values = {o.name: _option(config, o.dest) for o in OPTIONS if o.owner in SETTINGS_OWNERS}
    ini = {o.ini: config.getini(o.ini) for o in OPTIONS if o.ini}
    if not any(values[k] or ini[f"conformance_{k}"] for k in ("endpoints", "rollouts", "metrics")):
        return  # inert
    try:
        settings = resolve(values, ini, os.environ)
    except SettingsError as exc:
        _exit(str(exc))
    state = _Session(config, settings)
    from .. import strategies  # noqa: F401  registers the "ci" and "deep" hypothesis profiles
    if state.profile is None:
        from hypothesis import settings as hypothesis_settings
        state.previous_profile = getattr(hypothesis_settings, "_current_profile", None)
        hypothesis_settings.load_profile("ci")  # bounded and deterministic unless the user picked a profile
        state.profile = "ci"
    config.pluginmanager.register(state, _grading.SESSION)
    state.catch_signals()
    config.addinivalue_line("markers", "conformance_check(id, variant): a gym-conformance check item")
    suites = [str(path) for path, wanted in ((SUITE, settings.endpoints), (LOAD_SUITE, settings.endpoints),
                                             (LOOP_SUITE, settings.rollouts or settings.metrics)) if wanted]
    missing = [path for path in suites if path not in map(str, config.args)]
    if missing:
        # An explicit file or directory argument keeps the user's own tests; a default run gets only the suites.
        from _pytest.config import Config as _C
        config.args = ([*config.args] if config.args_source == _C.ArgsSource.ARGS else []) + missing
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
def conformance_loop(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The loop checks' outcomes (check id -> None, a CheckFailure or a CheckSkipped), judged at session start."""
    state = _session(request.config)
    if state is None or state.loop_outcomes is None:
        pytest.skip("no --rollouts or --metrics given: the loop checks judge a training loop's dumps and metrics")
    return state.loop_outcomes


@pytest.fixture
def conformance_load(request: pytest.FixtureRequest):
    """R10 over every endpoint of the run at once: a callable returning the passing evidence (or raising)."""
    state = _session(request.config)
    s = state.settings
    if not s.load:
        pytest.skip("needs --load N: R10 drives N concurrent Gym sessions over the endpoints")
    from ..checks import LoadPlan, run_load
    plan = LoadPlan(s.load, duration=s.load_duration, threshold=s.load_threshold)
    return lambda: run_load([state.context(url) for url in state.endpoints], plan)


@pytest.fixture
def conformance_measured(request: pytest.FixtureRequest):
    """Attach evidence (figures measured) to a passing item: the report keeps outcome pass with the evidence."""
    def record(evidence) -> None:
        request.node.stash[_MEASURED] = evidence
    return record


@pytest.fixture
def conformance_info(request: pytest.FixtureRequest):
    """Record an INFO-tier observation on the running item (reported as outcome "info")."""
    def record(info) -> None:
        request.node.stash[_INFO] = info
    return record


_INFO = pytest.StashKey[Any]()
_MEASURED = pytest.StashKey[Any]()


from . import _grading  # noqa: E402
from ._grading import (  # noqa: E402  hooks that grade and report live next door to keep this file small
    pytest_runtest_makereport, pytest_sessionfinish, pytest_terminal_summary)

__all__ = ["pytest_addoption", "pytest_configure", "pytest_runtest_makereport", "pytest_sessionfinish",
           "pytest_terminal_summary", "conformance_ctx", "conformance_info", "conformance_load", "conformance_loop", "conformance_measured"]
