"""Group-relative advantages: one number per completion, computed only within its group (G samples of one row).

Estimators (design anchors §3.1-3.2):
- ``grpo``:    A_i = (r_i - mean(r_g)) / (std(r_g) + eps)          (DeepSeekMath, Shao et al. 2024, eq. 3)
- ``dr_grpo``: A_i =  r_i - mean(r_g)                               (Dr. GRPO, Liu et al. 2025: no std scaling)
- ``loo``:     A_i =  r_i - mean(r_j, j != i)                       (leave-one-out / RLOO, Ahmadian et al. 2024)
A group whose rewards are all equal (zero std) gives every member advantage 0: it carries no signal. The std
is the population std (divide by G), as in TRL and NeMo RL's GRPO; a group of one gets 0.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Sequence

ESTIMATORS = ("grpo", "dr_grpo", "loo")


def group_advantages(rewards: Sequence[float], groups: Sequence[Hashable], *, estimator: str = "grpo",
                     eps: float = 1e-6) -> list[float]:
    """Advantage of every completion from the rewards of its own group only (never the batch)."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown advantage estimator {estimator!r}; known: {', '.join(ESTIMATORS)}")
    if len(rewards) != len(groups):
        raise ValueError(f"{len(rewards)} rewards for {len(groups)} group ids")
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    out = [0.0] * len(rewards)
    for idx in members.values():
        rs = [float(rewards[i]) for i in idx]
        n = len(rs)
        mean = sum(rs) / n
        std = math.sqrt(sum((r - mean) ** 2 for r in rs) / n)
        if n == 1 or max(rs) == min(rs):
            continue  # zero-std group (compared exactly: a float mean leaves a 1e-17 "std"): no signal, 0 each
        for i, r in zip(idx, rs):
            if estimator == "grpo":
                out[i] = (r - mean) / (std + eps)
            elif estimator == "dr_grpo":
                out[i] = r - mean
            else:
                out[i] = r - (sum(rs) - r) / (n - 1)
    return out


def zero_std_fraction(rewards: Sequence[float], groups: Sequence[Hashable]) -> float:
    """Share of groups whose rewards are all equal (a diagnostic the loop logs every step)."""
    by: dict[Hashable, set[float]] = defaultdict(set)
    for r, g in zip(rewards, groups):
        by[g].add(float(r))
    return sum(1 for v in by.values() if len(v) == 1) / len(by) if by else 0.0
