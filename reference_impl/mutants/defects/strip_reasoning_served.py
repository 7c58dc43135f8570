"""Serves the history with reasoning stripped from earlier turns (a Qwen3-style template, no correction)."""
from reference_impl.mutants.defects.no_correction import Mutant as _NoCorrection

REPRODUCES = "D08, D09 (P05)"
FIXTURE = "tiny-chatml-drift-strip-reasoning"


class Mutant(_NoCorrection):
    """The no-correction plan; the defect that differs is the template it serves with."""
