"""Endpoint (or mutant) × check matrix built from several reports; Markdown for the README, HTML section.

    matrix = build_matrix({"reference": load("ref.json"), "no-correction": load("stock.json")})
    Path("matrix.md").write_text(render_matrix_markdown(matrix))
    json.dumps(matrix.to_dict())      # machine-readable, schema "gym-conformance/matrix/1"

One cell per (row, check id). When a report holds several results for one check (one per endpoint,
parametrised probes) the cell shows the worst of them, so a single failing rank is never hidden.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ._documents import MATRIX_SCHEMA, MatrixDoc, ReportError, validate
from .model import TIERS, Report, check_id_key
from .outcomes import LEGEND_LINE, OUTCOMES, Outcome, worst_outcome

__all__ = ["MATRIX_SCHEMA", "GLYPHS", "Matrix", "build_matrix", "worst_outcome", "render_matrix_markdown",
           "render_matrix_html", "matrix_view"]

GLYPHS = {o.value: o.glyph for o in Outcome}


@dataclass
class Matrix:
    rows: list[str]
    columns: list[str]
    cells: dict[str, dict[str, str]]  # row → check id → outcome; absent = the check did not run there
    checks: dict[str, dict[str, str]] = field(default_factory=dict)  # check id → {"name", "tier"}

    def outcome(self, row: str, check_id: str) -> str | None:
        return self.cells.get(row, {}).get(check_id)

    def failing(self, row: str) -> set[str]:
        """Check ids that failed for ``row``: what a mutant's expectation entry is compared with."""
        return {check for check, outcome in self.cells.get(row, {}).items() if outcome == "fail"}

    def verdict(self, row: str) -> str:
        outcomes = set(self.cells.get(row, {}).values())
        return "fail" if "fail" in outcomes else "error" if "error" in outcomes else "pass"

    def to_dict(self) -> dict[str, Any]:
        return {"schema": MATRIX_SCHEMA, "rows": list(self.rows), "columns": list(self.columns),
                "checks": {key: dict(value) for key, value in self.checks.items()},
                "cells": {row: dict(self.cells.get(row, {})) for row in self.rows}}

    @classmethod
    def from_dict(cls, data: Any) -> "Matrix":
        doc = validate(MatrixDoc, data)  # raises ReportError naming the field
        return cls(list(doc.rows), list(doc.columns),
                   {row: {c: o.value for c, o in doc.cells.get(row, {}).items()} for row in doc.rows},
                   {key: meta.model_dump() for key, meta in doc.checks.items()})


AnyReport = Report | dict[str, Any]
Reports = Mapping[str, AnyReport] | Iterable[tuple[str, AnyReport]]


def build_matrix(reports: Reports) -> Matrix:
    """Rows in the given order (name → report); columns are every check id seen, in natural order."""
    pairs = list(reports.items()) if isinstance(reports, Mapping) else list(reports)
    rows, cells, checks = [], {}, {}
    for name, report in pairs:
        if name in cells:
            raise ValueError(f"duplicate matrix row {name!r}")
        report = report if isinstance(report, Report) else Report.from_dict(report)
        seen: dict[str, list[str]] = {}
        for result in report.results:
            seen.setdefault(result.check_id, []).append(result.outcome)
            checks.setdefault(result.check_id, {"name": result.name, "tier": result.tier})
        rows.append(name)
        cells[name] = {check: worst_outcome(outcomes) for check, outcomes in seen.items()}
    columns = sorted(checks, key=check_id_key)
    return Matrix(rows, columns, cells, {key: checks[key] for key in columns})


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_matrix_markdown(matrix: Matrix, *, transpose: bool = False,
                           columns: Iterable[str] | None = None, row_label: str = "endpoint") -> str:
    """A GitHub Markdown table with one glyph per cell and a legend line.

    ``transpose=True`` puts checks down the side (better once there are more checks than rows);
    ``columns`` restricts the table to some check ids; ``row_label`` heads the row names' column.
    """
    check_ids = list(matrix.columns if columns is None else columns)

    def glyph(row: str, check: str) -> str:
        return GLYPHS.get(matrix.outcome(row, check) or "", " ")

    if transpose:
        header = ["check", "tier", *(_md(row) for row in matrix.rows)]
        body = []
        for c in check_ids:
            meta = matrix.checks.get(c, {})
            body.append([f"{_md(c)} `{_md(meta.get('name', ''))}`", meta.get("tier", ""),
                         *(glyph(row, c) for row in matrix.rows)])
        body.append(["**verdict**", "", *(matrix.verdict(row) for row in matrix.rows)])
    else:
        header = [row_label, *(_md(c) for c in check_ids), "verdict"]
        body = [[_md(row), *(glyph(row, c) for c in check_ids), matrix.verdict(row)] for row in matrix.rows]
    align = ["---"] * (2 if transpose else 1) + [":-:"] * (len(header) - (2 if transpose else 1))
    lines = ["| " + " | ".join(line) + " |" for line in (header, align, *body)]
    return "\n".join(lines) + f"\n\n{LEGEND_LINE}\n"


def matrix_view(matrix: Matrix) -> dict[str, Any]:
    """Flat data for the ``matrix_section`` template macro."""
    return {
        "columns": [{"id": c, "name": matrix.checks.get(c, {}).get("name", ""),
                     "tier": matrix.checks.get(c, {}).get("tier", "")} for c in matrix.columns],
        "rows": [{"name": row, "verdict": matrix.verdict(row),
                  "cells": [{"check": c, "outcome": matrix.outcome(row, c),
                             "glyph": GLYPHS.get(matrix.outcome(row, c) or "", "")} for c in matrix.columns]}
                 for row in matrix.rows],
        "legend": LEGEND_LINE,
    }


@functools.lru_cache(maxsize=1)
def _macro() -> Any:
    from ._templates import environment  # local: jinja2 loads only when HTML is asked for

    return environment().get_template("_matrix.html.jinja").module.matrix_section


def render_matrix_html(matrix: Matrix) -> str:
    """The matrix as an HTML ``<section>`` fragment (the full report embeds the same section)."""
    return str(_macro()(matrix_view(matrix)))
