"""A rollout whose history drifted becomes a silent zero-reward dummy sample (fully masked) in the batch."""
from reference_impl.grpo.sequences import TrainSequence
from reference_impl.loop_mutants._drift import agent_without_bundles
from reference_impl.loop_mutants._edits import after_rollouts

KILLED_BY = "R3"
TASK = "lookup"


def patches(run):
    loop = run.loop
    original_build = loop.build_sequence

    def broken(calls) -> bool:
        try:
            original_build(calls)
        except loop.ContiguityError:
            return True
        return False

    def zero(done):
        for r in done:
            if not r.error and broken(r.calls):
                r.reward, r.components = 0.0, {k: 0.0 for k in r.components}  # "failed": reward 0, no flag

    def build_sequence(calls):
        try:
            return original_build(calls)
        except loop.ContiguityError:
            last = calls[-1]  # a placeholder the loss cannot learn from: nothing masked in
            ids = last.prompt_ids + last.generation_ids
            return TrainSequence(ids, [0] * len(ids), [0.0] * len(ids))

    return {"Agent": agent_without_bundles(loop), "run_rollouts": after_rollouts(loop, zero),
            "build_sequence": build_sequence}
