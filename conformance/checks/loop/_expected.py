"""What a correct loop trains on, computed from the served rollouts alone (pure functions; the harness's own
implementation, independent of any loop it judges).

- :func:`served_sequence` -- contract §9.2: the first prompt, then per model call the prompt ids it added after
  everything before it (mask 0) and its generation ids (mask 1); the old log probs are the served ones.
- :func:`expected_advantages` -- the group-relative estimators a loop may declare, each from its source.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from ...dumps import ServedCall

ESTIMATORS = ("grpo", "dr_grpo", "loo", "rloo")


@dataclass(frozen=True)
class Break:
    """Call ``call`` (0-based) does not extend what came before: first differing position ``position``."""

    call: int
    position: int
    expected: list[int]  # everything before the call: prompt + generation so far
    actual: list[int]    # the call's prompt


@dataclass(frozen=True)
class Sequence_:
    ids: list[int]
    mask: list[int]
    old: list[float | None]  # served log prob on generated positions, None elsewhere


def served_sequence(calls: Sequence[ServedCall]) -> Sequence_ | Break:
    """The one sequence a rollout trains on, or the first contiguity break (R3). Calls with no generated ids
    are skipped, as Gym's trainer-side rule skips items without ``generation_token_ids``."""
    ids: list[int] = []
    mask: list[int] = []
    old: list[float | None] = []
    for k, call in enumerate(calls):
        if not call.generation_token_ids:
            continue
        prompt = call.prompt_token_ids
        if prompt[:len(ids)] != ids:
            pos = next((i for i, (a, b) in enumerate(zip(ids, prompt)) if a != b), min(len(ids), len(prompt)))
            return Break(k, pos, list(ids), list(prompt))
        new = prompt[len(ids):]
        ids += new + call.generation_token_ids
        mask += [0] * len(new) + [1] * len(call.generation_token_ids)
        old += [None] * len(new) + list(call.generation_log_probs)
    return Sequence_(ids, mask, old)


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def expected_advantages(rewards: Sequence[float], groups: Sequence[Hashable], estimator: str,
                        eps: float = 1e-6) -> list[float]:
    """One advantage per sample from its own group's rewards only; a zero-std group gives 0 to every member.

    - ``grpo``:    (r_i − mean_g) / (std_g + eps), population std       (Shao et al. 2024, DeepSeekMath eq. 3)
    - ``dr_grpo``: r_i − mean_g                                          (Liu et al. 2025, Dr. GRPO)
    - ``loo`` / ``rloo``: r_i − mean of the others in the group         (Ahmadian et al. 2024, RLOO)
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown advantage estimator {estimator!r}; known: {', '.join(ESTIMATORS)}")
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    out = [0.0] * len(rewards)
    for idx in members.values():
        rs = [float(rewards[i]) for i in idx]
        n, mean = len(rs), sum(rs) / len(rs)
        if n == 1 or max(rs) == min(rs):
            continue
        std = math.sqrt(sum((r - mean) ** 2 for r in rs) / n)
        for i, r in zip(idx, rs):
            if estimator == "grpo":
                out[i] = (r - mean) / (std + eps)
            elif estimator == "dr_grpo":
                out[i] = r - mean
            else:
                out[i] = r - (sum(rs) - r) / (n - 1)
    return out


def batch_normalised(rewards: Sequence[float], eps: float = 1e-6) -> list[float]:
    """(r_i − mean_batch) / (std_batch + eps): the defect signature of normalising over the batch, not the group."""
    n = len(rewards)
    if n == 0:
        return []
    mean = sum(rewards) / n
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / n)
    return [(r - mean) / (std + eps) for r in rewards]
