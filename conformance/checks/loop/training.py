"""Loop checks on what the loss saw (L1, R4, R11, L2, R14, R8 from the dumps): every train line against the
rollout it names, recomputed from the served ids and rewards alone."""
from __future__ import annotations

import math

from ...core import logprob_metrics, token_diff
from ._expected import Break, batch_normalised, expected_advantages, finite, served_sequence
from ._framework import LoopCheck, StepData, loop_check

MULT_PROB_MAX, K3_MAX = 1.05, 1e-3   # contract §13: token_mult_prob_error and gen-KL (k3) bounds
ADV_TOL = 1e-4                       # advantages are written rounded; a wrong estimator is off by far more


def _close(a: float, b: float) -> bool:
    """The same number up to float32 storage (2^-23 relative): the served log prob kept in a float32 tensor
    still passes. A recompute does not: even a CPU fp32 trainer that agrees with vLLM to 1e-6 differs from the
    served values in their last bits, and that is how R11 tells the two apart however close they are."""
    return abs(a - b) <= 1e-12 + 2.0 ** -23 * max(abs(a), abs(b))


class _PerTrainLine(LoopCheck):
    """A check of each train line against the sequence its rollout's served calls build."""

    needs_batches = True
    unit = "train lines"

    def step(self, data: StepData) -> None:
        for n, t in data.trains:
            found = data.rollout(t.rollout_id)
            where = self.where("batches", n)
            if found is None:
                self.missing(t, where, data.step)
                continue
            built = served_sequence(found[1].calls)
            if not isinstance(built, Break):
                self.line(t, built, where)

    def missing(self, t, where: str, step: int) -> None:
        """A train line naming a rollout the rollouts dump lacks: only L1 reports it (once is enough)."""

    def line(self, t, built, where: str) -> None:
        raise NotImplementedError


@loop_check
class TrainedIsServed(_PerTrainLine):
    """L1: every trained sequence is exactly the ids the server returned for its rollout (no re-tokenization)."""

    id = "L1"

    def missing(self, t, where: str, step: int) -> None:
        self.violation(f"train line of rollout {t.rollout_id} (step {step}): the rollouts dump has no such rollout "
                       "in that step, so nothing says what was served", where)

    def line(self, t, built, where: str) -> None:
        if t.input_ids != built.ids:
            diff = token_diff(built.ids, t.input_ids, expected_label="served (first prompt + per call new prompt "
                              "ids + generation)", actual_label="trained input_ids")
            self.violation(f"rollout {t.rollout_id}: the trained input_ids differ from the served ids at position "
                           f"{diff.first_diff} ({len(t.input_ids)} trained vs {len(built.ids)} served): the trainer "
                           "re-tokenized or re-templated the rollout", where, token_diff=diff)


@loop_check
class MaskOnGeneratedIds(_PerTrainLine):
    """R4: the loss mask is 1 exactly on the generated ids: never on tool output, prompts or template tokens."""

    id = "R4"

    def line(self, t, built, where: str) -> None:
        if t.input_ids != built.ids:
            return  # L1 reports the sequence itself; the mask of other ids cannot be judged
        pos = next((i for i, (a, b) in enumerate(zip(t.loss_mask, built.mask)) if a != b), None)
        if pos is None:
            return
        what = "a prompt or environment token (tool output, user turn, template)" if t.loss_mask[pos] \
            else "a generated token"
        extra = sum(1 for a, b in zip(t.loss_mask, built.mask) if a and not b)
        lost = sum(1 for a, b in zip(t.loss_mask, built.mask) if b and not a)
        self.violation(f"rollout {t.rollout_id}: loss_mask[{pos}] is {t.loss_mask[pos]} on {what}; {extra} "
                       f"non-generated positions trained, {lost} generated positions left out", where,
                       token_diff=token_diff(built.mask, t.loss_mask, expected_label="mask 1 on generated ids",
                                             actual_label="loss_mask"))


@loop_check
class OldLogProbsAreServed(_PerTrainLine):
    """R11: the old (behaviour) log probs the loss used are the served generation_log_probs, not a recompute."""

    id = "R11"

    def line(self, t, built, where: str) -> None:
        if t.input_ids != built.ids:
            return
        pairs = [(i, o, s) for i, (o, s, m) in enumerate(zip(t.old_log_probs, built.old, built.mask))
                 if m and finite(o) and finite(s)]
        off = [(i, o, s) for i, o, s in pairs if not _close(o, s)]
        if not off:
            return
        worst = max(abs(o - s) for _, o, s in off)
        metrics = {"positions": len(pairs), "positions_off": len(off), "max_abs_diff_vs_served": worst}
        how = ""
        if t.trainer_log_probs is not None:
            trainer = [(o, t.trainer_log_probs[i]) for i, o, _ in pairs if finite(t.trainer_log_probs[i])]
            if trainer and all(_close(o, p) for o, p in trainer):
                how = ": they equal the trainer's own log probs at every position (recomputed, not served)"
                metrics["max_abs_diff_vs_trainer"] = max(abs(o - p) for o, p in trainer)
        i, o, s = off[0]
        self.violation(f"rollout {t.rollout_id}: old_log_probs differ from the served generation_log_probs at "
                       f"{len(off)} of {len(pairs)} generated positions (first at {i}: {o} vs served {s}; max |Δ| "
                       f"{worst:.2e}){how}", where, metrics=metrics)


@loop_check
class GroupAdvantages(LoopCheck):
    """L2: each trained sequence's advantage is the declared estimator over its own group's rewards (the trained
    members of the group), never normalised over the batch."""

    id = "L2"
    needs_batches = True
    unit = "train lines"

    def step(self, data: StepData) -> None:
        rows = []  # every train line of the step is a group member (a fully masked dummy too: the loop counted
        for n, t in data.trains:  # its reward); only lines that train something are judged
            found = data.rollout(t.rollout_id)
            if found is None or found[1].reward is None:
                continue
            adv = t.advantage
            if isinstance(adv, list):
                values = {round(a, 6) for a, m in zip(adv, t.loss_mask) if m}
                if len(values) > 1:
                    self.violation(f"rollout {t.rollout_id}: per-token advantages differ across its generated "
                                   f"positions ({sorted(values)[:4]}...): GRPO gives a sequence one advantage",
                                   self.where("batches", n))
                    continue
                adv = values.pop() if values else 0.0
            rows.append((n, t, found[1], float(adv)))
        if not rows:
            return
        rewards = [r.reward for _, _, r, _ in rows]
        expected = expected_advantages(rewards, [r.group_id for _, _, r, _ in rows], self.settings.advantage)
        batch = batch_normalised(rewards)
        for (n, t, r, got), want, b in zip(rows, expected, batch):
            if not any(t.loss_mask) or abs(got - want) <= ADV_TOL + ADV_TOL * abs(want):
                continue
            hint = ""
            if all(abs(g - bb) <= ADV_TOL + ADV_TOL * abs(bb) for (_, _, _, g), bb in zip(rows, batch)):
                hint = ": every advantage of the step is normalised over the whole batch, not within its group"
            self.violation(f"rollout {t.rollout_id} (group {r.group_id!r}, reward {r.reward}): advantage {got:.6g}, "
                           f"the declared {self.settings.advantage} estimator over its group gives {want:.6g}{hint}",
                           self.where("batches", n),
                           metrics={"advantage": got, "expected": want, "batch_normalised": b,
                                    "estimator": self.settings.advantage})


def _trainer_vs_served(data: StepData) -> tuple[list[float], list[float]]:
    """(trainer, served) log probs over every trained generated position of the step where both are finite."""
    trainer, served = [], []
    for _, t in data.trains:
        found = data.rollout(t.rollout_id)
        if t.trainer_log_probs is None or found is None:
            continue
        built = served_sequence(found[1].calls)
        if isinstance(built, Break) or built.ids != t.input_ids:
            continue
        for p, s, m in zip(t.trainer_log_probs, built.old, t.loss_mask):
            if m and finite(p) and finite(s):
                trainer.append(p)
                served.append(s)
    return trainer, served


@loop_check
class MismatchWithinBounds(LoopCheck):
    """R14: per step, the trainer's log probs and the served ones agree: token_mult_prob_error <= 1.05 and
    k3 <= 1e-3 (the per-step series is the evidence)."""

    id = "R14"
    needs_batches = True
    unit = "steps"

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.series: list[dict] = []

    def step(self, data: StepData) -> None:
        trainer, served = _trainer_vs_served(data)
        if trainer:
            m = logprob_metrics(trainer, served)
            self.series.append({"step": data.step, "token_mult_prob_error": round(m["token_mult_prob_error"], 6),
                                "k3": round(m["k3_kl"], 8), "tokens": m["tokens"]})

    def finish(self) -> None:
        if not self.series:
            from ...core import CheckSkipped
            self.skipped = CheckSkipped("the train batches carry no trainer_log_probs to compare with the served")
            return
        bad = [s for s in self.series if s["token_mult_prob_error"] > MULT_PROB_MAX or s["k3"] > K3_MAX]
        if bad:
            s = bad[0]
            self.violation(f"trainer and server disagree at {len(bad)} of {len(self.series)} steps; first at step "
                           f"{s['step']}: token_mult_prob_error {s['token_mult_prob_error']:.4f} (max {MULT_PROB_MAX}), "
                           f"k3 {s['k3']:.2e} (max {K3_MAX:g})", str(self.settings.batches), count=len(bad),
                           metrics={"series": self.series[:512]})


@loop_check
class RefitFromDumps(LoopCheck):
    """R8 (from the dumps): the server samples step t from the weights step t trains. Where versions are
    written, every call of a step reports the version its train lines train; with trainer log probs, a step
    whose served log probs left the R14 bounds after earlier steps were within them is the stale-weights (or
    stale prefix cache) signature."""

    id = "R8"
    needs_batches = True
    unit = "steps"

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.seen_within = False

    def step(self, data: StepData) -> None:
        trained = {t.weight_version for _, t in data.trains if t.weight_version is not None}
        if len(trained) == 1:
            version = next(iter(trained))
            for n, r in data.rollouts:
                served = {c.weight_version for c in r.calls if c.weight_version is not None}
                if served and served != {version}:
                    self.violation(f"step {data.step} trains weight version {version!r} but rollout {r.rollout_id} "
                                   f"was served by version(s) {sorted(map(str, served))}: the refit did not reach "
                                   "the server before the rollouts", self.where("rollouts", n))
                    break
        trainer, served = _trainer_vs_served(data)
        if not trainer:
            return
        m = logprob_metrics(trainer, served)
        within = m["token_mult_prob_error"] <= MULT_PROB_MAX and m["k3_kl"] <= K3_MAX
        if within:
            self.seen_within = True
        elif self.seen_within and not math.isnan(m["token_mult_prob_error"]):
            self.violation(f"step {data.step}: served log probs left the trainer's (token_mult_prob_error "
                           f"{m['token_mult_prob_error']:.4f}, k3 {m['k3_kl']:.2e}) after earlier steps agreed: "
                           "the server is sampling from stale weights (refit missed, or prefix cache not reset)",
                           str(self.settings.batches), metrics=m)
