"""Trained sequences from served ids only (contract R3, R4, R11): never re-tokenized, never repaired.

A rollout of k model calls becomes one sequence: the first call's prompt, then for every call the prompt ids
it added after the previous call's prompt + generation (template turns: tool outputs, user turns; mask 0),
then its generation ids (mask 1). The old log probs are the served ``generation_log_probs``. A call whose
prompt does not start with everything before it is a contiguity break: the rollout is refused (counted and
logged by the loop), never stitched together.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


class ContiguityError(ValueError):
    """Call k+1's prompt does not extend call k's prompt + generation; names the first differing position."""


@dataclass
class ServedCall:
    prompt_ids: list[int]
    generation_ids: list[int]
    logprobs: list[float]
    finish_reason: str = "stop"


@dataclass
class TrainSequence:
    ids: list[int]
    mask: list[int]              # 1 exactly on generated ids (R4)
    old_logprobs: list[float]    # served log prob at every masked position, 0.0 elsewhere (R11)

    @property
    def generated(self) -> int:
        return sum(self.mask)


def build_sequence(calls: list[ServedCall]) -> TrainSequence:
    if not calls:
        raise ValueError("a rollout without model calls has nothing to train on")
    ids: list[int] = []
    mask: list[int] = []
    old: list[float] = []
    for k, call in enumerate(calls):
        if len(call.logprobs) != len(call.generation_ids):
            raise ValueError(f"call {k + 1}: {len(call.logprobs)} log probs for {len(call.generation_ids)} ids")
        if call.prompt_ids[:len(ids)] != ids:
            pos = next((i for i, (a, b) in enumerate(zip(ids, call.prompt_ids)) if a != b), min(len(ids),
                                                                                                 len(call.prompt_ids)))
            raise ContiguityError(f"call {k + 1}'s prompt differs from the previous prompt + generation at "
                                  f"position {pos} (R3): the history was re-tokenized or re-templated")
        new = call.prompt_ids[len(ids):]
        ids += new + call.generation_ids
        mask += [0] * len(new) + [1] * len(call.generation_ids)
        old += [0.0] * len(new) + list(call.logprobs)
    return TrainSequence(ids, mask, old)


def has_nan(seq: TrainSequence) -> bool:
    """A NaN or infinite served log prob (R12): the sample is masked out and counted, never trained on."""
    return any(not math.isfinite(x) for x, m in zip(seq.old_logprobs, seq.mask) if m)
