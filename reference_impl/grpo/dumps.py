"""The loop's dumps for the loop checks: ``rollouts.jsonl`` and ``train_batches.jsonl`` in the run folder.

The formats are the harness's (``gym-conformance schema rollouts|batches``; docs/loop-dumps.md). They are
written here by hand, as any framework would write them: the loop never imports the harness that judges it.
One rollout line per rollout the trainer received (trained or not, with the reason when not), one train line
per trained sequence: its ids, mask, the old log probs the loss used and the trainer's own, its advantage.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from .rollout import Rollout
from .sequences import TrainSequence

ROLLOUTS, BATCHES = "rollouts.jsonl", "train_batches.jsonl"
ROLLOUTS_SCHEMA, BATCHES_SCHEMA = "gym-conformance/rollouts/1", "gym-conformance/train-batches/1"


def _finite(xs) -> list[float | None]:
    # JSON has no NaN: null says "not finite". Never rounded: the loop checks tell the served log probs from a
    # recompute by their last bits (a CPU trainer and vLLM agree to ~1e-6 here).
    return [float(x) if math.isfinite(x) else None for x in xs]


def rollout_id(step: int, rank: int, sample: int) -> str:
    return f"{step}-{rank}-{sample}"


def rollout_line(step: int, rank: int, r: Rollout, group_size: int, excluded: str | None, version) -> dict:
    return {
        "schema": ROLLOUTS_SCHEMA, "step": step, "rollout_id": rollout_id(step, rank, r.sample),
        "row_index": r.row_index, "group_id": f"{step}-{rank}-{r.sample // group_size}", "row": r.row,
        "reward": None if r.error else r.reward, "reward_components": r.components or None,
        "truncated": r.truncated, "error": r.error, "excluded": excluded,
        "calls": [{"prompt_token_ids": c.prompt_ids, "generation_token_ids": c.generation_ids,
                   "generation_log_probs": _finite(c.logprobs), "finish_reason": c.finish_reason,
                   "weight_version": version} for c in r.calls],
    }


def train_line(step: int, rank: int, r: Rollout, seq: TrainSequence, trainer_logprobs: list[float],
               advantage: float, version) -> dict:
    return {
        "schema": BATCHES_SCHEMA, "step": step, "rollout_id": rollout_id(step, rank, r.sample),
        "row_index": r.row_index, "input_ids": seq.ids, "loss_mask": seq.mask,
        "old_log_probs": _finite(seq.old_logprobs), "trainer_log_probs": _finite(trainer_logprobs),
        "advantage": float(advantage), "weight_version": version,
    }


def append(path: Path, lines: list[dict]) -> None:
    with path.open("a") as f:
        f.write("".join(json.dumps(line, allow_nan=False) + "\n" for line in lines))
