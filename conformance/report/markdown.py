"""Markdown summary of one report: for CI job summaries (``$GITHUB_STEP_SUMMARY``) and PR comments.

    write_markdown(load("reports/report.json"), "summary.md")

Counts, one table row per check, then one section per failure with the verdict and a windowed
token diff; the HTML report carries the full evidence.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ._diffview import diff_text, diff_view
from ._io import write_atomic
from .model import Report
from .outcomes import OUTCOMES, Outcome, family_of

__all__ = ["render_markdown", "write_markdown"]


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ").strip()


def _fence(text: str) -> str:
    # A fence longer than any backtick run inside, so evidence can never close it early.
    run, best = 0, 0
    for char in text:
        run = run + 1 if char == "`" else 0
        best = max(best, run)
    return "`" * max(3, best + 1)


def render_markdown(report: Report | dict[str, Any]) -> str:
    if not isinstance(report, Report):
        report = Report.from_dict(report)
    target, summary = report.target, report.summary
    lines = [f"# gym-conformance: {summary.verdict.upper()}", "",
             f"- endpoints: {', '.join(f'`{e}`' for e in target.endpoints) or 'none'}"
             + "".join(f" · {kind}: `{path}`" for kind, path in target.dumps.items()),
             f"- model: `{target.model or '(first from /v1/models)'}` · "
             f"tokenizer: `{target.tokenizer or 'none'}` · strict: {'on' if target.strict else 'off'}",
             f"- {report.started_at} · {report.duration_s:.1f} s · {report.tool_name} {report.tool_version}",
             "",
             "| " + " | ".join(Outcome(o).label for o in OUTCOMES) + " |",
             "|" + " :-: |" * len(OUTCOMES),
             "| " + " | ".join(str(summary.counts[o]) for o in OUTCOMES) + " |", "",
             "| family | id | name | tier | outcome | message |", "| --- | --- | --- | --- | --- | --- |"]
    for result in report.results:
        outcome = Outcome(result.outcome).label
        outcome = f"**{outcome}**" if result.outcome in ("fail", "error") else outcome
        line = result.message or (result.evidence.verdict if result.evidence else "")
        variant = f" ({_cell(result.variant)})" if result.variant else ""
        lines.append(f"| {family_of(result.check_id, result.name)} | {result.check_id} | `{_cell(result.name)}`{variant} "
                     f"| {result.tier} | {outcome} | {_cell(line)} |")
    for result in report.results:
        if result.outcome not in ("fail", "error", "non_strict"):
            continue
        title = f"{result.check_id} `{result.name}`: {Outcome(result.outcome).label} ({result.tier})"
        lines += ["", f"## {title}", "", f"> {_cell(result.requirement)}", ""]
        ev = result.evidence
        if ev is None:
            lines.append(_cell(result.message) or "(no evidence recorded)")
            continue
        lines.append(f"**{_cell(ev.verdict)}** (endpoint `{ev.endpoint}`)")
        if ev.token_diff is not None:
            view = diff_view(ev.token_diff)
            contexts = [f"{side.label} context: {side.context!r}" for side in view.sides]
            block = "\n".join([*diff_text(view), *contexts])
            fence = _fence(block)
            lines += ["", fence, block, fence]
        if ev.curl:
            fence = _fence(ev.curl)
            lines += ["", "Reproduce:", "", fence + "sh", ev.curl, fence]
    return "\n".join(lines) + "\n"


def write_markdown(report: Report | dict[str, Any], path: str | os.PathLike[str]) -> Path:
    return write_atomic(path, render_markdown(report))
