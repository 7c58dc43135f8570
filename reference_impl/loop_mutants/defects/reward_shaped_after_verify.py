"""A length penalty added to the verifier's reward after /verify, logged as the reward while the components
stay the verifier's: the reward trained on is no longer the sum of its components."""
from reference_impl.loop_mutants._edits import after_rollouts

KILLED_BY = "R1"
TASK = "lookup"
PENALTY = 0.002  # per generated token


def patches(run):
    def shape(done):
        for r in done:
            if not r.error:
                r.reward -= PENALTY * sum(len(c.generation_ids) for c in r.calls)

    return {"run_rollouts": after_rollouts(run.loop, shape)}
