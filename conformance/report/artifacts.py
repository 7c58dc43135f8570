"""All report artefacts at once: what the pytest plugin calls at session end, and what the CLI reuses.

    paths = write_reports(report, "reports/")   # report.json, report.html, junit.xml

Every artefact is rendered in memory before the first file is written, and each is written
atomically, so a rendering bug or bad data leaves the previous run's files untouched.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable

from ._io import write_atomic
from .model import Report, dumps

__all__ = ["FILENAMES", "render_artifacts", "write_reports"]

FILENAMES = {"json": "report.json", "html": "report.html", "junit": "junit.xml", "markdown": "report.md"}


def _renderer(kind: str) -> Callable[[Report], str]:
    # Imported on demand: JUnit-only or JSON-only callers never load jinja2.
    if kind == "json":
        return lambda report: dumps(report) + "\n"
    if kind == "html":
        from .html import render_html

        return render_html
    if kind == "junit":
        from .junit import render_junit

        return render_junit
    if kind == "markdown":
        from .markdown import render_markdown

        return render_markdown
    raise ValueError(f"unknown report artefact {kind!r} (expected one of {', '.join(FILENAMES)})")


def render_artifacts(report: Report | dict[str, Any], kinds: Iterable[str]) -> dict[str, str]:
    """``{kind: text}`` for each requested kind (json, html, junit, markdown); validates a dict first."""
    if not isinstance(report, Report):
        report = Report.from_dict(report)
    return {kind: _renderer(kind)(report) for kind in kinds}


def write_reports(report: Report | dict[str, Any], directory: str | os.PathLike[str],
                  kinds: Iterable[str] = ("json", "html", "junit")) -> dict[str, Path]:
    """Write the artefacts under their usual names in ``directory`` (created if missing)."""
    texts = render_artifacts(report, kinds)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    return {kind: write_atomic(folder / FILENAMES[kind], text) for kind, text in texts.items()}
