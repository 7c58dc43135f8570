"""Builds the run's ``report.json`` document (schema ``gym-conformance/report/1``) from graded results.

The report package owned by ``conformance.report`` validates and writes it when importable; otherwise the
same dict is written here, so the plugin never depends on the renderer being present.
"""
from __future__ import annotations

import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import __version__

from ..report.model import SCHEMA
from ..report.outcomes import OUTCOMES


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "fma")
                return [f for f in line.split(":", 1)[1].split() if f in wanted]
    except OSError:
        pass
    return []


def build(results: list[dict[str, Any]], *, started_at: str, duration_s: float, endpoints: list[str],
          model: str | None, tokenizer: str | None, strict: bool, hypothesis_profile: str | None,
          aborted: str | None = None, dumps: dict[str, str] | None = None) -> dict[str, Any]:
    """The report document; an aborted run (``aborted`` = the cause) is recorded as one ``error`` result,
    so the summary follows from the results alone (fail iff any fail; error iff any error and no fail)."""
    from ..report.model import Result, summarize

    if aborted:
        results = [*results, {"check_id": "RUN", "name": "run/could-not-run", "tier": "MUST",
                              "requirement": "The suite MUST be able to reach the endpoint (or read the dumps) and run with the "
                                             "options given.",
                              "outcome": "error", "nodeid": "", "duration_s": 0.0, "message": aborted,
                              "evidence": None}]
    summary = summarize([Result(**{k: r[k] for k in ("check_id", "name", "tier", "requirement", "outcome", "nodeid",
                                                      "duration_s", "message")}, evidence=None) for r in results])
    return {
        "schema": SCHEMA, "tool": {"name": "gym-conformance", "version": __version__},
        "started_at": started_at, "finished_at": now_iso(), "duration_s": round(duration_s, 3),
        "target": {"endpoints": endpoints, "model": model, "tokenizer": tokenizer, "strict": strict,
                   **({"dumps": dumps} if dumps else {})},
        "environment": {"python": sys.version.split()[0], "platform": platform.platform(), "cpu_flags": cpu_flags(),
                        "hypothesis_profile": hypothesis_profile},
        "summary": {"verdict": summary.verdict, "counts": dict(summary.counts)},
        "results": results,
    }


def write(report: dict[str, Any], out_dir: Path) -> tuple[Path, list[str]]:
    """Write ``report.json`` and ``report.html`` (JUnit comes from pytest's own junitxml).

    If the report model refuses the document (a harness bug), the JSON is still written as is, since it
    is the source of truth, and the problem is returned for the terminal summary.
    """
    from ..report.artifacts import write_reports
    from ..report._io import json_safe

    report = json_safe(report)
    problems = []
    try:
        paths = write_reports(report, out_dir, kinds=("json", "html"))
        return paths["json"], problems
    except Exception as exc:  # noqa: BLE001 - a report bug must not turn a conformance verdict into a crash
        problems.append(f"report model: {type(exc).__name__}: {exc}")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.json"
    path.write_text(json.dumps(report, indent=2, allow_nan=False))
    return path, problems
