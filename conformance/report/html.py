"""Self-contained HTML report rendered from ``report.json`` with one jinja2 template.

    write_html(load("reports/report.json"), "reports/report.html")

The template (``templates/report.html.jinja``, package data) is rendered once with a flat context
built here; autoescaping is always on, so ``<|im_end|>`` or ``<script>`` in evidence show as text.
The full report rides along as JSON in the ``data-jsonblob`` attribute of ``#report-data`` so the
HTML alone is enough to recover the data (pytest-html does the same).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from ._diffview import diff_view
from ._io import json_safe, pretty_json, write_atomic
from ._templates import environment
from .plots import logprob_plots, search_plot
from .model import Report, Result, check_id_key, dumps
from .outcomes import FAMILIES, OUTCOMES, Outcome, family_of

__all__ = ["LEGEND", "FAMILIES", "family_of", "render_html", "write_html"]

# the outcome vocabulary (label, description) as the templates read it
LEGEND: dict[str, tuple[str, str]] = {o.value: (o.label, o.description) for o in Outcome}
_DETAIL_OUTCOMES = ("fail", "non_strict", "error")


def _one_line(text: str | None, limit: int = 200) -> str:
    text = (text or "").strip()
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _metric(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(json_safe(value), ensure_ascii=False)
    return str(value)


def _body(value: Any) -> str | None:
    """Pretty JSON, except a string (a non-JSON error body as the client recorded it) shown as is."""
    if value is None or isinstance(value, str):
        return value
    return pretty_json(json_safe(value))


def _detail(index: int, result: Result) -> dict[str, Any]:
    ev = result.evidence
    detail: dict[str, Any] = {"index": index, "result": result, "open": result.outcome in ("fail", "error"),
                              "evidence": ev, "diff": None, "request": None, "response": None, "metrics": [],
                              "example": None, "plots": []}
    if ev is None:
        return detail
    detail["diff"] = None if ev.token_diff is None else diff_view(ev.token_diff)
    detail["request"], detail["response"] = _body(ev.request), _body(ev.response)
    metrics = dict(ev.metrics or {})
    served, rescored = metrics.pop("served_logprobs", None), metrics.pop("rescored_logprobs", None)
    detail["metrics"] = [(key, _metric(value)) for key, value in metrics.items()]
    detail["plots"] = (logprob_plots(served, rescored, metrics) if served and rescored else []) + search_plot(metrics)
    if ev.hypothesis is not None:
        detail["example"] = _body(ev.hypothesis["example"])
    return detail


def _context(report: Report, matrix: Any = None) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {}
    details = []
    for index, result in enumerate(report.results):
        has_detail = result.outcome in _DETAIL_OUTCOMES or result.evidence is not None
        row = {"index": index, "result": result, "family": family_of(result.check_id, result.name), "has_detail": has_detail,
               "line": _one_line(result.message or (result.evidence.verdict if result.evidence else ""))}
        groups.setdefault(row["family"], []).append(row)
        if has_detail:
            details.append(_detail(index, result))
    order = list(FAMILIES)
    ordered = sorted(groups, key=lambda fam: (order.index(fam) if fam in order else len(order), fam))
    grouped = [{"family": fam, "title": FAMILIES.get(fam, fam),
                "rows": sorted(groups[fam],
                               key=lambda row: (check_id_key(row["result"].check_id), row["index"]))}
               for fam in ordered]
    # Failures first: the reader opens the report to see what broke.
    details.sort(key=lambda d: (Outcome(d["result"].outcome).severity, d["index"]))
    summary = report.summary
    legend = [{"key": key, "label": LEGEND[key][0], "description": LEGEND[key][1],
               "count": summary.counts[key]} for key in OUTCOMES]
    if matrix is not None:
        from .matrix import matrix_view  # local: the matrix module is only needed when one is given

        matrix = matrix_view(matrix)
    return {"report": report, "summary": summary, "legend": legend, "labels": LEGEND,
            "groups": grouped, "details": details, "json_blob": dumps(report, compact=True), "matrix": matrix}


def render_html(report: Report | dict[str, Any], *, matrix: Any = None) -> str:
    """Render the report (a :class:`Report` or a decoded ``report.json``, validated first) to HTML.

    ``matrix`` (a :class:`conformance.report.matrix.Matrix`) adds a mutant × check section.
    """
    if not isinstance(report, Report):
        report = Report.from_dict(report)
    return environment().get_template("report.html.jinja").render(**_context(report, matrix))


def write_html(report: Report | dict[str, Any], path: str | os.PathLike[str], *, matrix: Any = None) -> Path:
    """Render fully, then write atomically (a failed render leaves any previous file untouched)."""
    return write_atomic(path, render_html(report, matrix=matrix))
