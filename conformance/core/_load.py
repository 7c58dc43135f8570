"""Pure arithmetic of the load tier (R10): latency percentiles, per-endpoint figures, and which weights served a call.

No IO: the load runner (``checks/load.py``) records calls, these functions turn records into the report's figures
and verdicts, and the unit tests feed them hand-made records.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

# A served log prob within this of the new weights' teacher-forced one "matches" them. vLLM and transformers agree
# to ~1e-4 on the same weights in float32 (tests/reference_impl/server); a refit worth the name moves log probs by
# far more than this, so a position matches only the weights that produced it.
WEIGHTS_TOL = 0.01
MIXED_RUN = 3  # a response ending in at least this many matching positions after a mismatch switched weights


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between order statistics (numpy's default)."""
    if not values:
        return math.nan
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True)
class Timed:
    """One call as the load runner saw it: which endpoint, when it was sent and answered, and its error."""

    endpoint: str
    start: float
    end: float
    error: str | None = None


def endpoint_figures(calls: Sequence[Timed], wall_s: float) -> dict[str, dict[str, float | int]]:
    """Per endpoint: calls, errors, error rate, throughput (answered calls per second of the load's wall time) and
    p50/p99 latency of the answered calls, in seconds."""
    out: dict[str, dict[str, float | int]] = {}
    for url in dict.fromkeys(c.endpoint for c in calls):
        mine = [c for c in calls if c.endpoint == url]
        ok = [c.end - c.start for c in mine if c.error is None]
        errors = len(mine) - len(ok)
        out[url] = {"calls": len(mine), "errors": errors, "error_rate": round(errors / len(mine), 4),
                    "throughput_per_s": round(len(ok) / wall_s, 3) if wall_s > 0 else 0.0,
                    "p50_s": round(percentile(ok, 50), 4) if ok else None,
                    "p99_s": round(percentile(ok, 99), 4) if ok else None}
    return out


def max_in_flight(calls: Sequence[Timed]) -> int:
    """The most calls that were outstanding at once (a sweep over send and answer times)."""
    events = sorted([(c.start, 1) for c in calls] + [(c.end, -1) for c in calls], key=lambda e: (e[0], e[1]))
    peak = now = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def served_by(served: Sequence[float], rescored: Sequence[float], tol: float = WEIGHTS_TOL) -> str:
    """Which weights produced a response, from its served log probs and the new weights' teacher-forced ones:
    ``"new"`` (every position matches), ``"mixed"`` (it starts on other weights and ends on the new ones: a refit
    landed mid-generation) or ``"old"``."""
    if len(served) != len(rescored):
        raise ValueError(f"length mismatch: {len(served)} served vs {len(rescored)} rescored log probs")
    match = [abs(s - r) <= tol for s, r in zip(served, rescored)]
    if all(match):
        return "new"
    tail = len(match) - max(i for i, m in enumerate(match) if not m) - 1  # matching positions after the last miss
    return "mixed" if tail >= MIXED_RUN and not match[0] else "old"


def went_back(versions: Sequence[str]) -> bool:
    """A rollout whose calls were served by the new weights and then by older ones (a rank that missed the refit,
    stale prefix-cache blocks): its turns mix policies in the wrong order."""
    seen_new = False
    for v in versions:
        if v in ("new", "mixed"):
            seen_new = True
        elif seen_new:
            return True
    return False
