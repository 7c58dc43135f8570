"""Conformance reports: the ``report.json`` model and its HTML, JUnit, Markdown and matrix renderers.

``report.json`` is the source of truth; everything else is rendered from it and can be re-rendered
without pytest (``gym-conformance report reports/report.json --html out.html``). Evidence and token
diffs are :mod:`conformance.core`'s own types, so what a check raises is what the report holds. Only
the model is imported here; the renderers (``.html``, ``.junit``, ``.markdown``, ``.matrix``) load
jinja2 when first used.
"""
from ._documents import ReportError
from .model import (
    OUTCOMES,
    SCHEMA,
    TIERS,
    VERDICTS,
    Environment,
    Report,
    Result,
    Summary,
    Target,
    dumps,
    load,
    loads,
    save,
    summarize,
)

__all__ = [
    "OUTCOMES", "SCHEMA", "TIERS", "VERDICTS", "Environment", "Report", "ReportError", "Result", "Summary",
    "Target", "dumps", "load", "loads", "save", "summarize",
]
