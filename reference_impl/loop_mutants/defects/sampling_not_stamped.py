"""The row a rollout is verified and logged with does not carry the sampling it used (temperature, top_p)."""
from reference_impl.loop_mutants._edits import after_rollouts

KILLED_BY = "R5"
TASK = "lookup"


def patches(run):
    def unstamp(done):
        for r in done:
            params = r.row.get("responses_create_params", {})
            for key in ("temperature", "top_p", "max_output_tokens"):
                params.pop(key, None)  # the row as the dataset gave it: the sampling lived in the client only

    return {"run_rollouts": after_rollouts(run.loop, unstamp)}
