"""Rollouts shuffled for the batch, then re-associated with their rows by position: every rollout filed
under its neighbour's row (its reward credited to the wrong prompt)."""
KILLED_BY = "R6"
TASK = "lookup"


def patches(run):
    original = run.loop.run_rollouts

    async def run_rollouts(agents, jobs, **kw):
        done = await original(agents, jobs, **kw)
        # the shuffle moved every rollout one place on; the rows were re-attached in the original order
        meta = [(r.row, r.row_index, r.sample) for r in done]
        for r, (row, index, sample) in zip(done, meta[-1:] + meta[:-1]):
            r.row, r.row_index, r.sample = row, index, sample
        return done

    return {"run_rollouts": run_rollouts}
