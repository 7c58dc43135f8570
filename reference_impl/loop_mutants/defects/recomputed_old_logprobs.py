"""Old log probs recomputed by the trainer before the update instead of taken from the server."""
import torch

KILLED_BY = "R11"
TASK = "lookup"


def patches(run):
    loop = run.loop
    original = loop.train_step

    def train_step(model, optimizer, seqs, advantages, cfg, world, *, pad_id, **kw):
        # the bug: one forward pass of the current policy over the batch stands in for the behaviour policy's
        # log probs (numerically close to the served ones, but not what the server sampled with)
        batch = loop.collate(seqs, advantages, pad_id)
        with torch.no_grad():
            logp = loop.token_logprobs(model, batch.ids, batch.attention, batch.mask)
        for row, seq in zip(logp.tolist(), seqs):
            seq.old_logprobs = [x if m else 0.0 for x, m in zip(row, seq.mask)]
        return original(model, optimizer, seqs, advantages, cfg, world, pad_id=pad_id, **kw)

    return {"train_step": train_step}
