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
from pathlib import Path
from typing import Any, Sequence

from ..core import Evidence, TokenDiff
from ._io import json_safe, pretty_json, write_atomic
from ._documents import ReportDoc, ReportError, validate
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
    variant: str | None = None  # which variant of a check with several (M1 drift-search, ...); None: the only one


@dataclass
class Target:
    endpoints: list[str]
    model: str | None = None
    tokenizer: str | None = None
    strict: bool = False
    dumps: dict[str, str] = field(default_factory=dict)  # the loop dumps the loop checks read, by kind


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
        "target": _target_dict(report.target), "environment": asdict(report.environment),
        "summary": asdict(report.summary),
        "results": [asdict(result) for result in report.results],  # recurses into Evidence and TokenDiff
    }


def _target_dict(target: Target) -> dict[str, Any]:
    out = asdict(target)
    if not out["dumps"]:
        del out["dumps"]  # an endpoint run's target reads as before the loop checks existed
    return out


def _report_from_dict(data: Any) -> Report:
    doc = validate(ReportDoc, data)  # raises ReportError naming the field
    return Report(
        tool_name=doc.tool.name, tool_version=doc.tool.version, started_at=doc.started_at,
        finished_at=doc.finished_at, duration_s=float(doc.duration_s),
        target=Target(endpoints=list(doc.target.endpoints), model=doc.target.model, tokenizer=doc.target.tokenizer,
                      strict=doc.target.strict, dumps=dict(doc.target.dumps)),
        environment=Environment(python=doc.environment.python, platform=doc.environment.platform,
                                cpu_flags=list(doc.environment.cpu_flags),
                                hypothesis_profile=doc.environment.hypothesis_profile),
        results=[_result(r, raw) for r, raw in zip(doc.results, data["results"])])


def _result(doc, raw: dict[str, Any]) -> Result:
    ev = doc.evidence
    evidence = None
    if ev is not None:
        # request/response stay free-form as sent: the client records a non-JSON error body as a string, and
        # that is precisely the evidence an "endpoint returned garbage" failure needs to show
        raw_ev = raw["evidence"]
        diff = None if ev.token_diff is None else TokenDiff(**ev.token_diff.model_dump())
        evidence = Evidence(verdict=ev.verdict, endpoint=ev.endpoint, request=raw_ev["request"],
                            response=raw_ev["response"], curl=ev.curl, token_diff=diff, metrics=raw_ev["metrics"],
                            hypothesis=None if ev.hypothesis is None else dict(raw_ev["hypothesis"]),
                            notes=list(ev.notes))
    return Result(check_id=doc.check_id, name=doc.name, tier=doc.tier, requirement=doc.requirement,
                  outcome=doc.outcome.value, nodeid=doc.nodeid, duration_s=float(doc.duration_s),
                  message=doc.message, evidence=evidence, variant=doc.variant)
