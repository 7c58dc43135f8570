"""Loop checks: judge a framework's training loop from the dumps it writes (rollouts, train batches).

The endpoint checks prove what a framework serves; these prove what it trains on. ``judge(LoopSettings(...))``
runs every check in one streaming pass (``_framework``); the checks themselves are in ``rollouts`` (what the
trainer received and did with each rollout) and ``training`` (what the loss saw), the expected sequence and
advantages in ``_expected`` (pure). ``judge_curves`` (``curves``) judges a run's metrics against a benchmark.
"""
from . import rollouts, training  # noqa: F401  importing the modules registers their checks
from ._expected import ESTIMATORS
from ._framework import REGISTRY as LOOP_CHECKS
from ._framework import TRUNCATION, LoopSettings, judge
from .curves import BENCHMARKS, CURVE_CHECKS, judge_curves

__all__ = ["BENCHMARKS", "CURVE_CHECKS", "ESTIMATORS", "LOOP_CHECKS", "TRUNCATION", "LoopSettings", "judge",
           "judge_curves"]
