"""What several mutants share: a change to the rollouts as the trainer receives them."""
from __future__ import annotations


def after_rollouts(loop, edit):
    """``loop.run_rollouts`` that hands every step's finished rollouts to ``edit(rollouts)`` (in place) first."""
    original = loop.run_rollouts

    async def run_rollouts(agents, jobs, **kw):
        done = await original(agents, jobs, **kw)
        edit(done)
        return done

    return run_rollouts
