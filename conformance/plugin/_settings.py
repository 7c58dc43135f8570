"""The suite's settings, declared once: every front end is generated from :data:`OPTIONS`.

Each :class:`Option` names its flag, ini key, environment variable, type, default and help. From the table:

- :func:`add_pytest_options` — the plugin's ``pytest_addoption`` (flags and ini keys);
- :func:`add_run_arguments` — ``gym-conformance run``'s argparse arguments: the same flags with the same
  destinations, plus the options of the plugins the suite relies on (hypothesis, pytest, pytest-xdist);
- :func:`pytest_args` — ``run``'s pass-through: its parsed arguments back into a pytest command line;
- :func:`resolve` — raw values (command line, then ini key, then environment, then default) in, typed
  :class:`Settings` out, or a :class:`SettingsError` carrying one line. No pytest here: unit-tested directly.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

PLUGIN, HYPOTHESIS, PYTEST, XDIST = "gym-conformance", "hypothesis", "pytest", "xdist"
# the loop checks' declared-behaviour choices (equal to conformance.checks.loop's, a test says; not imported
# here: the plugin loads with every pytest run, the checks only when a run uses them)
LOOP_ESTIMATORS, LOOP_TRUNCATION = ("grpo", "dr_grpo", "loo", "rloo"), ("train", "drop")
GROUP = ("gym-conformance", "NeMo Gym conformance of an OpenAI-compatible generation endpoint")


class SettingsError(ValueError):
    """A setting has a value the suite cannot run with; ``str(exc)`` is one line naming the flag or ini key."""


@dataclass(frozen=True)
class Option:
    """One setting. ``flag`` is the canonical spelling: the plugin's flag, and the one ``run`` hands to pytest."""

    name: str  # the Settings field (pass-through options of other plugins: the argparse destination)
    flag: str
    help: str
    kind: str = "str"  # str | list (repeatable) | flag (store_true) | float | int
    ini: str | None = None
    env: str | None = None
    default: Any = None  # used when neither the flag, the ini key nor the environment variable gives a value
    default_help: str | None = None  # how --help states the default, when str(default) would not say it
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # further spellings ``gym-conformance run`` accepts (the flag stays canonical)
    owner: str = PLUGIN  # which pytest plugin registers the flag; ``run`` passes every owner's options through
    required_by_run: bool = False  # ``run`` has no ini file, so what the suite cannot do without is required
    parse: Callable[[Any], Any] | None = field(default=None, compare=False)  # raw -> typed; ValueError = bad

    @property
    def dest(self) -> str:
        """The argparse destination, as pytest derives it from the flag (``--api-key`` -> ``api_key``)."""
        return self.name if self.owner in (PYTEST, XDIST) else self.flag.lstrip("-").replace("-", "_")

    @property
    def help_text(self) -> str:
        shown = self.default_help or (None if self.default in (None, (), [], {}, False) else str(self.default))
        return f"{self.help} (default: {shown})" if shown else self.help

    @property
    def ini_type(self) -> str:
        return {"list": "linelist", "flag": "bool"}.get(self.kind, "string")


# --- value parsers: raw value (a string from the command line or an ini file) -> typed, or ValueError ------

def _http_url(value: str) -> str:
    if not str(value).startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return str(value)


def _urls(values: list[str]) -> tuple[str, ...]:
    return tuple(_http_url(v) for v in values)


def _check_ids(values: list[str]) -> tuple[str, ...]:
    from ..checks import CHECKS
    from ..checks.loop import LOOP_CHECKS
    from ..core import CATALOGUE
    ids = tuple(str(v).strip().upper() for v in values)
    from ..checks import LOAD_CHECKS
    implemented = [*CHECKS, *(c for c in (*LOOP_CHECKS, *LOAD_CHECKS) if c not in CHECKS)]
    unknown = [c for c in ids if c not in implemented]
    if unknown:
        kind = "not implemented" if all(c in CATALOGUE for c in unknown) else "unknown"
        raise ValueError(f"names {kind} check id(s) {', '.join(unknown)}; implemented: {', '.join(implemented)}")
    return ids


def _dump_file(value: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_file():
        raise ValueError(f"{value!r} is not a file" + (" (it is a directory)" if path.is_dir() else ""))
    return path.resolve()


def _seconds(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"must be a positive number of seconds, got {value!r}")
    return seconds


def _positive_int(what: str) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        try:
            n = int(value)
        except (TypeError, ValueError):
            n = 0
        if n < 1:
            raise ValueError(f"must be a positive {what}, got {value!r}")
        return n
    return parse


_bytes, _count = _positive_int("number of bytes"), _positive_int("whole number")


def _local_model(value: str) -> str:
    if not (Path(value) / "config.json").is_file():
        raise ValueError(f"{value!r} is not a local model directory (no config.json)")
    return str(value)


def _json_object(value: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise ValueError(f"must be a JSON object: {exc}") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"must be a JSON object, got {value!r}")
    return parsed


def _gym_version(value: str) -> str:
    from ..client import GYM_PROFILES
    if value not in GYM_PROFILES:
        raise ValueError(f"{value!r} is not a verified NeMo Gym version; verified: {', '.join(GYM_PROFILES)}")
    return str(value)


def _on_off(value: Any) -> bool:
    if value in ("on", "off"):
        return value == "on"
    raise ValueError(f"must be on or off, got {value!r}")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be true or false, got {value!r}")


def _seed(value: Any) -> int | None:
    # hypothesis accepts any string as a seed; the drift search's own seed is used only when it is an integer
    text = str(value)
    return int(text) if text.lstrip("-").isdigit() else None


OPTIONS: tuple[Option, ...] = (
    Option("endpoints", "--endpoint", "endpoint base URL (…/v1); repeat for one server per data-parallel rank",
           kind="list", ini="conformance_endpoints", metavar="URL", parse=_urls),
    Option("rollouts", "--rollouts", "loop checks: the rollouts dump a training loop wrote (docs/loop-dumps.md); "
           "needs no endpoint", ini="conformance_rollouts", metavar="PATH", parse=_dump_file),
    Option("train_batches", "--train-batches", "loop checks: the train-batches dump beside --rollouts (without "
           "it the checks of what the loss saw are skipped)", ini="conformance_train_batches", metavar="PATH",
           parse=_dump_file),
    Option("metrics", "--metrics", "benchmark checks: a training run's per-step scalars (JSONL or CSV with a step "
           "column; reward_mean, val_reward, ... as frameworks log them)", ini="conformance_metrics", metavar="PATH",
           parse=_dump_file),
    Option("benchmark", "--benchmark", "the benchmark --metrics ran: a task of this repository (its curve is "
           "compared with the reference band) or a declared Gym benchmark", ini="conformance_benchmark",
           metavar="NAME"),
    Option("loop_advantage", "--loop-advantage", "the advantage estimator the loop declares (L2)",
           ini="conformance_loop_advantage", default="grpo", choices=LOOP_ESTIMATORS),
    Option("loop_truncation", "--loop-truncation", "what the loop declares it does with a response cut off by the "
           "token budget: train it exactly as served, or drop it (R9)", ini="conformance_loop_truncation",
           default="train", choices=LOOP_TRUNCATION),
    Option("model", "--model", "served model name", ini="conformance_model", metavar="NAME",
           default_help="the first id from /v1/models"),
    Option("api_key", "--api-key", "bearer key sent to the endpoint", env="OPENAI_API_KEY", default="dummy_key",
           default_help="$OPENAI_API_KEY, else dummy_key", metavar="KEY"),
    Option("tokenizer", "--tokenizer", "local Hugging Face tokenizer + chat template for the template-level and "
           "multi-turn checks (skipped without it)", ini="conformance_tokenizer", metavar="PATH_OR_NAME"),
    Option("rescore_model", "--rescore-model", "local Hugging Face model holding the trainer's current weights: "
           "M24 teacher-forces with it instead of the endpoint's /v1/completions (catches an endpoint serving "
           "stale weights)", ini="conformance_rescore_model", metavar="PATH", parse=_local_model),
    Option("refit_url", "--refit-url", 'R8: POST {"path": <--rescore-model>} here to make the endpoint load the '
           "trainer's weights, then check that served log probs follow them (skipped without it)",
           ini="conformance_refit_url", metavar="URL", parse=_http_url),
    Option("strict", "--conformance-strict", "SHOULD-level failures fail the run", kind="flag",
           ini="conformance_strict", default=False, aliases=("--strict",), parse=_bool),
    Option("report_dir", "--conformance-report", "where report.json, report.html and junit.xml go",
           ini="conformance_report", default=Path("reports"), default_help="reports/", metavar="DIR",
           aliases=("--report",), parse=Path),
    Option("checks", "--check", "run only these check ids (E4, M1, …); repeatable", kind="list",
           ini="conformance_checks", metavar="ID", parse=_check_ids),
    Option("timeout", "--conformance-timeout", "per-request timeout, also the retry budget for 429/5xx",
           kind="float", ini="conformance_timeout", default=60.0, default_help="60", metavar="SECONDS",
           parse=_seconds),
    Option("deadline", "--conformance-deadline", "bound on the whole run: no request is sent after it, the checks "
           "still to come end as errors and the run exits 2 with its report", kind="float",
           ini="conformance_deadline", default_help="none", metavar="SECONDS", parse=_seconds),
    Option("max_response_bytes", "--conformance-max-response-bytes", "largest response body read; a larger one is "
           "refused (counted as no answer)", kind="int", ini="conformance_max_response_bytes",
           default=16 * 2**20, default_help="16 MiB", metavar="BYTES", parse=_bytes),
    Option("load", "--load", "R10: drive N concurrent Gym-like multi-turn sessions over the endpoints (per-session "
           "affinity across data-parallel ranks) and check continuity, prompts, errors and, with --refit-url, a refit "
           "under load (skipped without it)", kind="int", ini="conformance_load", metavar="N", parse=_count),
    Option("load_duration", "--load-duration", "keep the --load sessions busy this long, each starting a new "
           "rollout when one ends", kind="float", ini="conformance_load_duration",
           default_help="one rollout per session", metavar="SECONDS", parse=_seconds),
    Option("load_threshold", "--load-threshold", "R10's bar: the concurrency an endpoint should sustain (Gym's docs "
           "test at 2,000; set what your hardware is sized for)", kind="int", ini="conformance_load_threshold",
           default=2000, metavar="N", parse=_count),
    Option("chat_template_kwargs", "--chat-template-kwargs",
           'chat_template_kwargs sent on every call, e.g. \'{"enable_thinking": false}\'',
           ini="conformance_chat_template_kwargs", default={}, default_help="{}", metavar="JSON",
           parse=_json_object),
    Option("gym_version", "--gym-version", "which NeMo Gym the client reproduces (0.4.0, 0.7.0)",
           ini="conformance_gym_version", default_help="the newest verified", metavar="VERSION",
           parse=_gym_version),
    Option("reasoning_parser", "--gym-reasoning-parser", "Gym's uses_reasoning_parser, which must match the "
           "endpoint's reasoning parser", ini="conformance_gym_reasoning_parser", default=True,
           default_help="on", choices=("on", "off"), parse=_on_off),
    # Registered by hypothesis' own pytest plugin; read by the drift search, passed through by ``run``.
    Option("hypothesis_profile", "--hypothesis-profile", "drift-search profile: ci is derandomized and bounded "
           "(12 examples), quick a derandomized smoke run (4), deep runs 200 examples", owner=HYPOTHESIS,
           default_help="ci", choices=("ci", "quick", "deep")),
    Option("hypothesis_seed", "--hypothesis-seed", "seed for the drift search", owner=HYPOTHESIS, metavar="N",
           parse=_seed),
    # pytest's and pytest-xdist's own options, passed through by ``run``.
    Option("keyword", "-k", "pytest -k expression over test names", owner=PYTEST, metavar="EXPRESSION"),
    Option("numprocesses", "-n", "pytest-xdist workers (needs pytest-xdist)", owner=XDIST, metavar="N"),
    Option("verbose", "-v", "pytest's verbose output", kind="flag", owner=PYTEST, aliases=("--verbose",)),
)
SETTINGS_OWNERS = (PLUGIN, HYPOTHESIS)  # whose options become Settings fields


@dataclass(frozen=True)
class Settings:
    """One run's settings, typed and validated (see :data:`OPTIONS` for what each means)."""

    endpoints: tuple[str, ...] = ()
    rollouts: Path | None = None
    train_batches: Path | None = None
    metrics: Path | None = None
    benchmark: str | None = None
    loop_advantage: str = "grpo"
    loop_truncation: str = "train"
    model: str | None = None
    api_key: str = "dummy_key"
    tokenizer: str | None = None
    rescore_model: str | None = None
    refit_url: str | None = None
    strict: bool = False
    report_dir: Path = Path("reports")
    checks: tuple[str, ...] = ()
    timeout: float = 60.0
    deadline: float | None = None
    max_response_bytes: int = 16 * 2**20
    load: int | None = None
    load_duration: float | None = None
    load_threshold: int = 2000
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    gym_version: str | None = None
    reasoning_parser: bool = True
    hypothesis_profile: str | None = None
    hypothesis_seed: int | None = None


def _given(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != ()


def resolve(values: Mapping[str, Any], ini: Mapping[str, Any] | None = None,
            env: Mapping[str, str] | None = None) -> Settings:
    """Typed settings from raw ones, or :class:`SettingsError` with one line naming where the bad value came from.

    ``values`` maps Settings field names to command-line values (None or empty: not given), ``ini`` ini keys to
    their values, ``env`` the environment. Precedence per setting: command line, ini key, environment, default.
    """
    ini, env = ini or {}, env or {}
    typed: dict[str, Any] = {}
    for opt in OPTIONS:
        if opt.owner not in SETTINGS_OWNERS:
            continue
        candidates = [(values.get(opt.name), opt.flag)]
        if opt.ini:
            candidates.append((ini.get(opt.ini), f"ini {opt.ini}"))
        if opt.env:
            candidates.append((env.get(opt.env), f"${opt.env}"))
        raw, source = next(((v, s) for v, s in candidates if _given(v)), (None, None))
        if source is None:
            typed[opt.name] = tuple(opt.default or ()) if opt.kind == "list" else opt.default
            continue
        try:
            typed[opt.name] = opt.parse(raw) if opt.parse else raw
        except ValueError as exc:
            raise SettingsError(f"{source} {exc}") from None
    settings = Settings(**typed)
    if settings.train_batches and not settings.rollouts:
        raise SettingsError("--train-batches needs --rollouts: the train lines are judged against the rollouts "
                            "they name")
    if settings.benchmark and not settings.metrics:
        raise SettingsError("--benchmark needs --metrics: the benchmark is judged from the run's metrics")
    if not (settings.endpoints or settings.rollouts or settings.metrics):
        raise SettingsError("nothing to judge: give --endpoint URL (an endpoint), --rollouts PATH (a training "
                            "loop's dumps) or --metrics PATH (a run's metrics), or their ini keys")
    for opt, value in (("--loop-advantage", settings.loop_advantage), ("--loop-truncation", settings.loop_truncation)):
        choices = LOOP_ESTIMATORS if opt == "--loop-advantage" else LOOP_TRUNCATION
        if value not in choices:  # the ini key is not checked by argparse
            raise SettingsError(f"{opt} {value!r} is not one of {', '.join(choices)}")
    if settings.tokenizer and not Path(settings.tokenizer).exists() and env.get("HF_HUB_OFFLINE") == "1":
        raise SettingsError(f"--tokenizer {settings.tokenizer!r} does not exist and the hub is offline")
    if settings.load_duration and not settings.load:
        raise SettingsError("--load-duration needs --load N: the duration is how long the N sessions run")
    if settings.load and not settings.endpoints:
        raise SettingsError("--load needs --endpoint URL: the load is driven against the endpoints")
    if settings.refit_url and not settings.rescore_model:
        raise SettingsError("--refit-url needs --rescore-model: R8 refits the endpoint to those weights and "
                            "rescores with them")
    return settings


# --- front ends ----------------------------------------------------------------------------------------

def add_pytest_options(parser: Any) -> None:
    """The plugin's flags and ini keys (``pytest_addoption``). Defaults stay None / [] so that "not given"
    is visible and :func:`resolve` can fall back to the ini key, the environment and the default."""
    group = parser.getgroup(*GROUP)
    for opt in OPTIONS:
        if opt.owner != PLUGIN:
            continue
        kwargs: dict[str, Any] = {"dest": opt.dest, "help": opt.help_text}
        if opt.kind == "flag":
            kwargs.update(action="store_true", default=None)
        else:
            kwargs.update(action="append" if opt.kind == "list" else "store", default=[] if opt.kind == "list"
                          else None, metavar=opt.metavar)
            if opt.choices:
                kwargs["choices"] = list(opt.choices)
        group.addoption(opt.flag, **kwargs)
        if opt.ini:
            parser.addini(opt.ini, opt.help_text, type=opt.ini_type, default=None)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``gym-conformance run``'s arguments: every option, under the plugin's flag (aliases accepted too)."""
    for opt in OPTIONS:
        kwargs: dict[str, Any] = {"dest": opt.dest, "help": opt.help_text}
        if opt.kind == "flag":
            kwargs.update(action="store_true", default=False)
        else:
            kwargs.update(action="append" if opt.kind == "list" else "store", default=[] if opt.kind == "list"
                          else None, metavar=opt.metavar)
            if opt.choices:
                kwargs["choices"] = list(opt.choices)
        if opt.required_by_run:
            kwargs["required"] = True
        parser.add_argument(opt.flag, *opt.aliases, **kwargs)


def pytest_args(args: argparse.Namespace) -> list[str]:
    """``run``'s parsed arguments as the pytest command line that means the same (canonical flags only)."""
    out: list[str] = []
    for opt in OPTIONS:
        value = getattr(args, opt.dest, None)
        if opt.kind == "flag":
            out += [opt.flag] if value else []
        elif opt.kind == "list":
            for item in value or ():
                out += [opt.flag, str(item)]
        elif value is not None and value != "":
            out += [opt.flag, str(value)]
    return out
