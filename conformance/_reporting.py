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

from . import __version__

SCHEMA = "gym-conformance/report/1"
OUTCOMES = ("pass", "fail", "non_strict", "info", "skipped", "error")


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
          aborted: bool = False) -> dict[str, Any]:
    counts = {k: 0 for k in OUTCOMES}
    for r in results:
        counts[r["outcome"]] += 1
    verdict = "error" if aborted or counts["error"] else "fail" if counts["fail"] else "pass"
    return {
        "schema": SCHEMA, "tool": {"name": "gym-conformance", "version": __version__},
        "started_at": started_at, "finished_at": now_iso(), "duration_s": round(duration_s, 3),
        "target": {"endpoints": endpoints, "model": model, "tokenizer": tokenizer, "strict": strict},
        "environment": {"python": sys.version.split()[0], "platform": platform.platform(), "cpu_flags": cpu_flags(),
                        "hypothesis_profile": hypothesis_profile},
        "summary": {"verdict": verdict, "counts": counts},
        "results": results,
    }


def _finite(value: Any) -> Any:
    """Strict JSON: non-finite floats (a NaN log prob is itself evidence) become strings."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return repr(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write(report: dict[str, Any], out_dir: Path) -> tuple[Path, list[str]]:
    """Write ``report.json`` (through the report model when available) and ``report.html`` if it renders."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.json"
    report = _finite(report)
    try:
        from .report import model as report_model  # owned by the report engineer; optional here
    except ImportError:
        report_model = None
    problems = []
    try:
        if report_model is None:
            raise ImportError("conformance.report.model not available")
        report_model.save(report_model.Report.from_dict(report), path)
    except Exception as exc:  # noqa: BLE001 - the JSON is the source of truth: write it whatever the model says
        problems.append(f"report model: {type(exc).__name__}: {exc}")
        path.write_text(json.dumps(report, indent=2, allow_nan=False))
    try:
        from .report.html import write_html
    except ImportError:
        return path, problems
    try:
        write_html(report, out_dir / "report.html")
    except Exception as exc:  # noqa: BLE001 - a renderer bug must not turn a conformance verdict into a crash
        problems.append(f"HTML renderer: {type(exc).__name__}: {exc}")
    return path, problems
