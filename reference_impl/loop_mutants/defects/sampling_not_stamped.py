"""The row a rollout is verified and logged with does not carry the sampling it used (temperature, top_p)."""
KILLED_BY = "R5"
TASK = "lookup"


def patches(run):
    original = run.loop.run_rollouts

    async def run_rollouts(agents, jobs, **kw):
        done = await original(agents, jobs, **kw)
        for r in done:
            params = r.row.get("responses_create_params", {})
            for key in ("temperature", "top_p", "max_output_tokens"):
                params.pop(key, None)  # the row as the dataset gave it: the sampling lived in the client only
        return done

    return {"run_rollouts": run_rollouts}
