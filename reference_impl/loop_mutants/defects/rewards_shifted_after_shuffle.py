"""Rollouts shuffled for the batch, then re-associated with their rows by position: every rollout filed
under its neighbour's row (its reward credited to the wrong prompt)."""
from reference_impl.loop_mutants._edits import after_rollouts

KILLED_BY = "R6"
TASK = "lookup"


def patches(run):
    def reattach(done):
        # the shuffle moved every rollout one place on; the rows were re-attached in the original order
        meta = [(r.row, r.row_index, r.sample) for r in done]
        for r, (row, index, sample) in zip(done, meta[-1:] + meta[:-1]):
            r.row, r.row_index, r.sample = row, index, sample

    return {"run_rollouts": after_rollouts(run.loop, reattach)}
