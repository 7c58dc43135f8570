"""A NaN served log prob is trained on: no finiteness check, the loss replaces it with 0 and steps.

The NaN is the server's (fp16 engines return them; here one served log prob per step is set to NaN as it
arrives); the bug is the trainer's: the sample goes into the batch instead of being counted and masked (R12).
"""
import math

from reference_impl.loop_mutants._edits import after_rollouts

KILLED_BY = "R12"
TASK = "lookup"


def patches(run):
    loop = run.loop
    original_step = loop.train_step

    def poison(done):
        hit = next((r for r in done if not r.error and r.calls and len(r.calls[0].logprobs) > 2), None)
        if hit is not None:
            hit.calls[0].logprobs[2] = float("nan")

    def train_step(model, optimizer, seqs, advantages, cfg, world, **kw):
        # the loss sees 0.0 where the served value was NaN (a nan_to_num in the loss); the dump keeps what
        # the batch held
        saved = [s.old_logprobs for s in seqs]
        for s in seqs:
            s.old_logprobs = [x if math.isfinite(x) else 0.0 for x in s.old_logprobs]
        try:
            return original_step(model, optimizer, seqs, advantages, cfg, world, **kw)
        finally:
            for s, old in zip(seqs, saved):
                s.old_logprobs = old

    return {"run_rollouts": after_rollouts(loop, poison), "has_nan": lambda seq: False, "train_step": train_step}
