"""The comparison page: several runs side by side, checks as rows, runs as columns (autobahn's matrix).

``gym-conformance report compare RUN_DIR... [--out FILE]``. Each cell is the worst outcome of that check in that
run, colour-graded, and links to the run's own ``report.html`` at that check's evidence. Pure: runs in, HTML
out; reading the run folders and writing the page is the CLI's job.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ._templates import environment
from .model import Report, check_id_key
from .outcomes import LEGEND_LINE, Outcome, family_of, worst_outcome

_DETAIL = {"fail", "non_strict", "error"}


@dataclass
class Run:
    """One column: a run's name, its report, and where its HTML report is, relative to the comparison page."""

    name: str
    report: Report
    html_href: str | None = None


def compare_view(runs: Sequence[Run]) -> dict[str, Any]:
    """Flat data for ``compare.html.jinja``: one row per check id seen in any run."""
    checks: dict[str, dict[str, str]] = {}
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    for run in runs:
        per_check: dict[str, list[tuple[int, Any]]] = {}
        for index, result in enumerate(run.report.results):
            per_check.setdefault(result.check_id, []).append((index, result))
            checks.setdefault(result.check_id, {"name": result.name, "tier": result.tier, "requirement":
                                                result.requirement})
        for check_id, rows in per_check.items():
            outcome = worst_outcome(r.outcome for _, r in rows)
            index, result = next((i, r) for i, r in rows if r.outcome == outcome)
            # the run's own page has a detail section for failures and anything with evidence
            anchor = f"r{index}" if (result.outcome in _DETAIL or result.evidence is not None) \
                else f"family-{family_of(result.check_id, result.name)}"
            line = (result.message or (result.evidence.verdict if result.evidence else "") or "").strip()
            cells.setdefault(check_id, {})[run.name] = {
                "outcome": outcome, "glyph": Outcome(outcome).glyph, "label": Outcome(outcome).label,
                "href": f"{run.html_href}#{anchor}" if run.html_href else None,
                "title": f"{run.name} × {check_id}: {Outcome(outcome).label}" + (f": {line[:300]}" if line else "")}
    order = sorted(checks, key=check_id_key)
    differs = [c for c in order if len({cells[c].get(r.name, {}).get("outcome") for r in runs}) > 1]
    return {
        "runs": [{"name": r.name, "verdict": r.report.summary.verdict, "counts": r.report.summary.counts,
                  "href": r.html_href, "target": r.report.target.model or ", ".join(r.report.target.endpoints)}
                 for r in runs],
        "rows": [{"id": c, **checks[c], "differs": c in differs,
                  "cells": [cells[c].get(r.name) for r in runs]} for c in order],
        "differs": len(differs), "legend": [{"key": o.value, "label": o.label, "glyph": o.glyph,
                                             "description": o.description} for o in Outcome],
        "legend_line": LEGEND_LINE,
    }


def render_compare_html(runs: Sequence[Run]) -> str:
    if not runs:
        raise ValueError("nothing to compare: give at least one run")
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"run names must differ: {names}")
    return environment().get_template("compare.html.jinja").render(**compare_view(runs))


def relative_href(target: Path, page: Path) -> str:
    """``target`` as a link from a page written at ``page`` (both local files)."""
    return Path(os.path.relpath(target.resolve(), page.resolve().parent)).as_posix()
