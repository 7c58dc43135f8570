"""The report model: ``report.json`` (schema ``gym-conformance/report/1``) is the source of truth.

The pytest plugin writes it; HTML, JUnit and Markdown are rendered from it, with or without pytest.
Pure data and plain functions: no pytest, no templates, file IO only in :func:`load` / :func:`save`.

    report = load("reports/report.json")
    report.results[0].evidence.token_diff   # conformance.core's Evidence / TokenDiff
    report.summary.verdict          # "pass" | "fail" | "error"
    save(report, "copy.json")       # atomic: temp file + rename
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from ..core import Evidence, TokenDiff
from . import _schema as s
from ._io import json_safe, pretty_json, write_atomic
from ._schema import ReportError
from .outcomes import OUTCOMES, VERDICTS, verdict_of

SCHEMA = "gym-conformance/report/1"
TIERS = ("MUST", "SHOULD", "INFO")


@dataclass
class Result:
    """One graded check run (a row of the report); ``evidence`` is what the check raised with."""

    check_id: str
    name: str
    tier: str
    requirement: str
    outcome: str
    nodeid: str = ""
    duration_s: float = 0.0
    message: str | None = None
    evidence: Evidence | None = None


@dataclass
class Target:
    endpoints: list[str]
    model: str | None = None
    tokenizer: str | None = None
    strict: bool = False


@dataclass
class Environment:
    python: str
    platform: str
    cpu_flags: list[str] = field(default_factory=list)
    hypothesis_profile: str | None = None


@dataclass
class Summary:
    verdict: str
    counts: dict[str, int]


@dataclass
class Report:
    """One conformance run against one target (several endpoints for data-parallel ranks)."""

    tool_version: str
    started_at: str
    finished_at: str
    duration_s: float
    target: Target
    environment: Environment
    results: list[Result]
    tool_name: str = "gym-conformance"

    @property
    def summary(self) -> Summary:
        """Always derived from ``results``; a stored summary that disagrees is rejected on load."""
        return summarize(self.results)

    @classmethod
    def from_dict(cls, data: Any) -> "Report":
        """Validate a decoded ``report.json``; raises :class:`ReportError` naming the bad field."""
        return _report_from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return _report_to_dict(self)


def check_id_key(check_id: str) -> list[Any]:
    """Natural order for check ids: ``E2`` before ``E10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", check_id)]


def summarize(results: Sequence[Result]) -> Summary:
    """Counts per outcome and the run verdict: fail iff any fail; error iff any error and no fail."""
    counts = {outcome: 0 for outcome in OUTCOMES}
    for result in results:
        counts[result.outcome] += 1
    return Summary(verdict=verdict_of(r.outcome for r in results), counts=counts)


# ---------------------------------------------------------------- JSON IO

def dumps(report: Report | dict[str, Any], *, compact: bool = False) -> str:
    """Strict JSON (browsers and ``jq`` reject ``NaN``): non-finite floats inside free-form objects
    (request, response, metrics) become the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``."""
    data = json_safe(report.to_dict() if isinstance(report, Report) else report)
    if compact:
        return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return pretty_json(data)


def loads(text: str, *, source: str | None = None) -> Report:
    """Parse and validate; errors carry ``source`` (a file name) in front of the field path."""
    try:
        return Report.from_dict(json.loads(text))
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ReportError("", f"not valid JSON ({where}: {exc.msg})", source) from None
    except ReportError as exc:
        exc.source = source
        raise


def load(path: str | os.PathLike[str]) -> Report:
    """Read and validate a ``report.json``; ``OSError`` if unreadable, :class:`ReportError` if invalid."""
    return loads(Path(path).read_text(encoding="utf-8"), source=str(path))


def save(report: Report, path: str | os.PathLike[str]) -> Path:
    """Serialize first (so an unserializable report writes nothing), then write atomically."""
    return write_atomic(path, dumps(report) + "\n")


# ---------------------------------------------------------------- dict conversion

def _report_to_dict(report: Report) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "tool": {"name": report.tool_name, "version": report.tool_version},
        "started_at": report.started_at, "finished_at": report.finished_at, "duration_s": report.duration_s,
        "target": asdict(report.target), "environment": asdict(report.environment),
        "summary": asdict(report.summary),
        "results": [asdict(result) for result in report.results],  # recurses into Evidence and TokenDiff
    }


def _report_from_dict(data: Any) -> Report:
    s.obj(data, "", ["schema", "tool", "started_at", "finished_at", "duration_s", "target", "environment",
                     "summary", "results"])
    if data["schema"] != SCHEMA:
        raise ReportError("schema", f"expected {SCHEMA!r}, got {data['schema']!r}")
    for key in ("started_at", "finished_at"):
        _check_timestamp(s.get(data, key, "", str), key)
    tool = s.obj(data["tool"], "tool", ["name", "version"])
    target = s.obj(data["target"], "target", ["endpoints", "model", "tokenizer", "strict"])
    env = s.obj(data["environment"], "environment", ["python", "platform", "cpu_flags", "hypothesis_profile"])
    items = s.get(data, "results", "", list)
    results = [_result_from_dict(item, f"results[{i}]") for i, item in enumerate(items)]
    report = Report(
        tool_name=s.get(tool, "name", "tool", str), tool_version=s.get(tool, "version", "tool", str),
        started_at=s.get(data, "started_at", "", str), finished_at=s.get(data, "finished_at", "", str),
        duration_s=s.get(data, "duration_s", "", float),
        target=Target(endpoints=s.list_of(target, "endpoints", "target", str),
                      model=s.get(target, "model", "target", str, nullable=True),
                      tokenizer=s.get(target, "tokenizer", "target", str, nullable=True),
                      strict=s.get(target, "strict", "target", bool)),
        environment=Environment(python=s.get(env, "python", "environment", str),
                                platform=s.get(env, "platform", "environment", str),
                                cpu_flags=s.list_of(env, "cpu_flags", "environment", str),
                                hypothesis_profile=s.get(env, "hypothesis_profile", "environment", str,
                                                         nullable=True)),
        results=results)
    _check_summary(_summary_from_dict(data["summary"]), summarize(results))
    return report


def _check_timestamp(text: str, path: str) -> None:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise ReportError(path, f"expected an ISO 8601 timestamp, got {text!r}") from None


def _summary_from_dict(data: Any) -> Summary:
    s.obj(data, "summary", ["verdict", "counts"])
    counts = s.obj(data["counts"], "summary.counts", OUTCOMES)
    for outcome in OUTCOMES:
        if s.get(counts, outcome, "summary.counts", int) < 0:
            raise ReportError(f"summary.counts.{outcome}", f"expected a count >= 0, got {counts[outcome]}")
    return Summary(verdict=s.choice(data, "verdict", "summary", VERDICTS), counts=dict(counts))


def _check_summary(stored: Summary, computed: Summary) -> None:
    # A summary that disagrees with its results would make the HTML badge and CI gate lie; refuse it.
    for outcome in OUTCOMES:
        if stored.counts[outcome] != computed.counts[outcome]:
            raise ReportError(f"summary.counts.{outcome}", f"says {stored.counts[outcome]} but results have "
                                                           f"{computed.counts[outcome]}")
    if stored.verdict != computed.verdict:
        raise ReportError("summary.verdict", f"says {stored.verdict!r} but results give {computed.verdict!r}")


def _result_from_dict(data: Any, path: str) -> Result:
    s.obj(data, path, ["check_id", "name", "tier", "requirement", "outcome", "nodeid", "duration_s",
                       "message", "evidence"])
    if not s.get(data, "check_id", path, str):
        raise ReportError(f"{path}.check_id", "must not be empty")
    evidence = data["evidence"]
    return Result(check_id=data["check_id"], name=s.get(data, "name", path, str),
                  tier=s.choice(data, "tier", path, TIERS), requirement=s.get(data, "requirement", path, str),
                  outcome=s.choice(data, "outcome", path, OUTCOMES), nodeid=s.get(data, "nodeid", path, str),
                  duration_s=s.get(data, "duration_s", path, float),
                  message=s.get(data, "message", path, str, nullable=True),
                  evidence=None if evidence is None else _evidence_from_dict(evidence, f"{path}.evidence"))


def _evidence_from_dict(data: Any, path: str) -> Evidence:
    s.obj(data, path, ["verdict", "endpoint", "request", "response", "curl", "token_diff", "metrics",
                       "hypothesis", "notes"])
    diff, hyp = data["token_diff"], data["hypothesis"]
    # request/response stay free-form: the client records a non-JSON error body as a string, and that
    # is precisely the evidence an "endpoint returned garbage" failure needs to show.
    return Evidence(verdict=s.get(data, "verdict", path, str), endpoint=s.get(data, "endpoint", path, str),
                    request=data["request"], response=data["response"],
                    curl=s.get(data, "curl", path, str, nullable=True),
                    token_diff=None if diff is None else _diff_from_dict(diff, f"{path}.token_diff"),
                    metrics=s.get(data, "metrics", path, dict, nullable=True),
                    hypothesis=None if hyp is None else _hypothesis_from_dict(hyp, f"{path}.hypothesis"),
                    notes=s.list_of(data, "notes", path, str))


def _diff_from_dict(data: Any, path: str) -> TokenDiff:
    labels = ("expected_label", "actual_label", "expected_context", "actual_context")
    s.obj(data, path, ["expected", "actual", "first_diff", *labels])
    expected, actual = s.list_of(data, "expected", path, int), s.list_of(data, "actual", path, int)
    first = s.get(data, "first_diff", path, int, nullable=True)
    if first is not None and not 0 <= first <= max(len(expected), len(actual)):
        raise ReportError(f"{path}.first_diff", f"{first} is outside both sequences (lengths {len(expected)} "
                                                f"and {len(actual)})")
    texts = {key: s.get(data, key, path, str) for key in labels}
    return TokenDiff(expected=expected, actual=actual, first_diff=first, **texts)


def _hypothesis_from_dict(data: Any, path: str) -> dict[str, Any]:
    s.obj(data, path, ["seed", "example"])
    return {"seed": s.get(data, "seed", path, int, nullable=True), "example": data["example"]}
