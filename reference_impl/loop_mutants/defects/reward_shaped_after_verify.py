"""A length penalty added to the verifier's reward after /verify, logged as the reward while the components
stay the verifier's: the reward trained on is no longer the sum of its components."""
KILLED_BY = "R1"
TASK = "lookup"
PENALTY = 0.002  # per generated token


def patches(run):
    original = run.loop.run_rollouts

    async def run_rollouts(agents, jobs, **kw):
        done = await original(agents, jobs, **kw)
        for r in done:
            if not r.error:
                r.reward -= PENALTY * sum(len(c.generation_ids) for c in r.calls)
        return done

    return {"run_rollouts": run_rollouts}
