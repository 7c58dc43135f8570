"""Conformance reports: the ``report.json`` model and its HTML, JUnit, Markdown and matrix renderers.

``report.json`` is the source of truth; everything else is rendered from it and can be re-rendered
without pytest (``gym-conformance report reports/report.json --html out.html``). Only the model is
imported here; renderers load jinja2 when first used.
"""
from ._schema import ReportError
from .model import (
    OUTCOMES,
    SCHEMA,
    TIERS,
    Environment,
    Evidence,
    HypothesisInfo,
    Report,
    Result,
    Summary,
    Target,
    TokenDiff,
    describe_token_diff,
    diff_span,
    dumps,
    first_difference,
    load,
    loads,
    save,
    summarize,
    token_diff,
)

__all__ = [
    "OUTCOMES", "SCHEMA", "TIERS", "Environment", "Evidence", "HypothesisInfo", "Report", "ReportError", "Result",
    "Summary", "Target", "TokenDiff", "describe_token_diff", "diff_span", "dumps", "first_difference", "load",
    "loads", "save", "summarize", "token_diff",
]
