"""Loop checks on what the trainer received and what it did with each rollout (R1, R2, R3, R5, R6, R9, R12).

Each reads the rollouts dump; those that ask whether a rollout was trained also read the train batches.
"""
from __future__ import annotations

import hashlib
import json
import math

from ...core import token_diff
from ._expected import Break, finite, served_sequence
from ._framework import LoopCheck, StepData, loop_check

SAMPLING_KEYS = ("temperature", "top_p", "max_output_tokens")
BANNED_SAMPLING = ("stop", "stop_token_ids", "top_k")


def _trained(data: StepData, rollout_id: str) -> bool:
    """Some train line of this rollout has at least one generated (mask 1) position."""
    return any(any(t.loss_mask) for _, t in data.trained(rollout_id))


@loop_check
class RewardIsItsComponents(LoopCheck):
    """R1: every successful rollout has a finite reward; with components, the reward is their sum."""

    id = "R1"

    def step(self, data: StepData) -> None:
        for n, r in data.succeeded():
            where = self.where("rollouts", n)
            if r.reward is None or not math.isfinite(r.reward):
                self.violation(f"rollout {r.rollout_id} has reward {r.reward!r}: not a finite number", where)
            elif r.reward_components:
                total = sum(r.reward_components.values())
                if not math.isclose(r.reward, total, rel_tol=1e-5, abs_tol=1e-6):
                    self.violation(f"rollout {r.rollout_id}: reward {r.reward} is not the sum of its components "
                                   f"{r.reward_components} ({total}) within rel 1e-5 / abs 1e-6", where,
                                   metrics={"reward": r.reward, "sum_of_components": total})


@loop_check
class EveryRolloutTrainsOrErrs(LoopCheck):
    """R2: a successful rollout generated something, and is trained on or left out with its reason, never lost."""

    id = "R2"

    def step(self, data: StepData) -> None:
        check_training = self.settings.batches is not None
        for n, r in data.succeeded():
            where = self.where("rollouts", n)
            if not any(c.generation_token_ids for c in r.calls):
                self.violation(f"rollout {r.rollout_id} has no generated ids in any call and no error: nothing to "
                               "train on, and nothing says why", where)
            elif check_training and r.excluded is None and not _trained(data, r.rollout_id):
                dummy = bool(data.trained(r.rollout_id))
                self.violation(f"rollout {r.rollout_id} (step {r.step}) is neither trained on nor excluded with a "
                               "reason" + (": its train line masks every token (a silent dummy sample)" if dummy
                                           else ": it was lost silently"), where)


@loop_check
class ContiguousOrRefused(LoopCheck):
    """R3: a rollout whose calls do not extend each other is refused or flagged, never trained on."""

    id = "R3"

    def step(self, data: StepData) -> None:
        for n, r in data.succeeded():
            built = served_sequence(r.calls)
            if not isinstance(built, Break):
                continue
            trained = self.settings.batches is not None and _trained(data, r.rollout_id)
            if r.excluded is not None and not trained:
                continue  # refused and flagged: what R3 asks
            how = "trained on" if trained else "not flagged (excluded is null)"
            diff = token_diff(built.expected, built.actual, prefix=True,
                              expected_label=f"calls 1-{built.call} prompt + generation",
                              actual_label=f"call {built.call + 1} prompt")
            self.violation(f"rollout {r.rollout_id}: call {built.call + 1}'s prompt does not extend the calls "
                           f"before it (first difference at position {built.position}), and the rollout was {how}",
                           self.where("rollouts", n), token_diff=diff)


@loop_check
class SamplingStamped(LoopCheck):
    """R5: the row carries the sampling the trainer stamped into it; no stop strings, stop ids or top_k."""

    id = "R5"

    def step(self, data: StepData) -> None:
        for n, r in data.rollouts:
            params = r.row.get("responses_create_params")
            where = self.where("rollouts", n)
            if not isinstance(params, dict):
                self.violation(f"rollout {r.rollout_id}: its row has no responses_create_params object", where)
                continue
            missing = [k for k in ("temperature", "top_p") if not isinstance(params.get(k), (int, float))]
            banned = [k for k in BANNED_SAMPLING if params.get(k) not in (None, -1, [])]
            if missing:
                self.violation(f"rollout {r.rollout_id}: {' and '.join(missing)} not stamped into the row's "
                               "responses_create_params (the rollout's sampling is not on record)", where,
                               request={k: params.get(k) for k in SAMPLING_KEYS})
            elif banned:
                self.violation(f"rollout {r.rollout_id}: the row sets {', '.join(banned)} "
                               f"({', '.join(repr(params[k]) for k in banned)}); Gym training sampling has none",
                               where, request={k: params.get(k) for k in (*SAMPLING_KEYS, *banned)})


def _fingerprint(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _task(row: dict) -> dict:
    """The row without what the trainer stamps into it: the same row index must always carry the same task."""
    params = {k: v for k, v in (row.get("responses_create_params") or {}).items()
              if k not in SAMPLING_KEYS + BANNED_SAMPLING}
    return {**{k: v for k, v in row.items() if k != "responses_create_params"}, "responses_create_params": params}


@loop_check
class RowsReassociated(LoopCheck):
    """R6: results are matched back to their own rows: one row index, one task and one first prompt, a group is
    one row, and a train line names its rollout's row. (Two rows may share a prompt: lookup's rows ask for the
    same key of different tables, so a prompt alone never names its row.)"""

    id = "R6"

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.task_of: dict[int, tuple[str, int]] = {}     # row index -> (task fingerprint, first line seen)
        self.prompt_of: dict[int, tuple[str, int]] = {}   # row index -> (first prompt fingerprint, line)

    def step(self, data: StepData) -> None:
        groups: dict[object, tuple[int, int]] = {}
        for n, r in data.rollouts:
            where = self.where("rollouts", n)
            task = _fingerprint(_task(r.row))
            seen = self.task_of.setdefault(r.row_index, (task, n))
            if seen[0] != task:
                self.violation(f"row index {r.row_index} carries two different tasks (line {seen[1]} and this "
                               f"line): rows and results were re-associated wrongly", where)
            first = next((c.prompt_token_ids for c in r.calls if c.prompt_token_ids), None)
            if first is not None:
                prompt = _fingerprint(first)
                seen = self.prompt_of.setdefault(r.row_index, (prompt, n))
                if seen[0] != prompt:
                    self.violation(f"rollout {r.rollout_id} of row {r.row_index} starts from another prompt than "
                                   f"line {seen[1]}'s rollout of the same row: its calls belong to another row",
                                   where)
            member = groups.setdefault(r.group_id, (r.row_index, n))
            if member[0] != r.row_index:
                self.violation(f"group {r.group_id!r} mixes rows {member[0]} (line {member[1]}) and {r.row_index}: "
                               "a GRPO group is the samples of one row", where)
        for n, t in data.trains:
            found = data.rollout(t.rollout_id)
            if found is not None and found[1].row_index != t.row_index:
                self.violation(f"train line of rollout {t.rollout_id} names row {t.row_index}, the rollout ran row "
                               f"{found[1].row_index}", self.where("batches", n))


@loop_check
class TruncationAsDeclared(LoopCheck):
    """R9: a response cut off by the token budget is handled as the loop declares: trained exactly as served
    (no end-of-turn id appended: that teaches the model to stop where it was cut) or dropped."""

    id = "R9"

    def step(self, data: StepData) -> None:
        for n, r in data.rollouts:
            if r.error or not r.calls:
                continue
            where = self.where("rollouts", n)
            cut = r.calls[-1].finish_reason == "length"
            if r.truncated != cut and r.calls[-1].finish_reason is not None:
                self.violation(f"rollout {r.rollout_id}: truncated is {r.truncated} but the last call ended with "
                               f"finish_reason {r.calls[-1].finish_reason!r}", where)
                continue
            if not (cut or r.truncated) or self.settings.batches is None:
                continue
            trains = [t for _, t in data.trained(r.rollout_id)]
            if self.settings.truncation == "drop":
                if any(any(t.loss_mask) for t in trains):
                    self.violation(f"rollout {r.rollout_id} was truncated and the loop declares it drops truncated "
                                   "responses, but it was trained on", where)
                continue
            built = served_sequence(r.calls)
            for t in trains:
                if isinstance(built, Break) or len(t.input_ids) <= len(built.ids):
                    continue
                if t.input_ids[:len(built.ids)] == built.ids:
                    extra = t.input_ids[len(built.ids):]
                    self.violation(f"rollout {r.rollout_id} was cut off by the token budget, and its train line "
                                   f"appends {extra} after the served ids: trained as if complete", where,
                                   token_diff=token_diff(built.ids, t.input_ids, expected_label="served",
                                                         actual_label="trained"))


@loop_check
class NoNanTrained(LoopCheck):
    """R12: a rollout with a NaN (or missing) served log prob is refused, and no trained position has one."""

    id = "R12"

    def step(self, data: StepData) -> None:
        for n, r in data.succeeded():
            bad = [(k, i) for k, c in enumerate(r.calls) for i, x in enumerate(c.generation_log_probs) if not finite(x)]
            if not bad:
                continue
            trained = self.settings.batches is not None and _trained(data, r.rollout_id)
            if trained or r.excluded is None:
                k, i = bad[0]
                self.violation(f"rollout {r.rollout_id}: call {k + 1}'s served log prob at generated position {i} "
                               f"is not finite, and the rollout was {'trained on' if trained else 'not flagged'}",
                               self.where("rollouts", n))
        for n, t in data.trains:
            for name in ("old_log_probs", "trainer_log_probs"):
                values = getattr(t, name)
                if values is None:
                    continue
                pos = next((i for i, (x, m) in enumerate(zip(values, t.loss_mask)) if m and not finite(x)), None)
                if pos is not None:
                    self.violation(f"train line of rollout {t.rollout_id}: {name}[{pos}] is {values[pos]!r} on a "
                                   "trained position", self.where("batches", n))
