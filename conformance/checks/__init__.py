"""Checks as small functions registered by catalogue id (importing this package registers them all)."""
# importing the modules registers their checks
from . import drift, endpoint, fidelity, history, multiturn, rendering, roundtrip, template  # noqa: F401
from ._context import CheckContext, Context, Target
from ._reference import Reference, Split
from ._registry import CHECKS, arun_check, check, run_check
from .load import LOAD_CHECKS, LoadPlan, run_load

__all__ = ["CHECKS", "LOAD_CHECKS", "LoadPlan", "run_load", "CheckContext", "Context", "Reference", "Split", "Target", "arun_check", "check", "run_check"]
