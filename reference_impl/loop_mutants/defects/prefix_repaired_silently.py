"""A call whose prompt does not extend the history is stitched on anyway (the history kept, the new prompt's
tail appended by length) and trained on without a flag."""
from reference_impl.loop_mutants._drift import agent_without_bundles

KILLED_BY = "R3"
TASK = "lookup"


def patches(run):
    loop = run.loop
    original = loop.build_sequence

    def build_sequence(calls):
        try:
            return original(calls)
        except loop.ContiguityError:
            seq = original(calls[:1])
            for call in calls[1:]:
                new = call.prompt_ids[len(seq.ids):]  # "the prefix is the same length, so it is the same"
                seq.ids += new + call.generation_ids
                seq.mask += [0] * len(new) + [1] * len(call.generation_ids)
                seq.old_logprobs += [0.0] * len(new) + list(call.logprobs)
            return seq

    return {"Agent": agent_without_bundles(loop), "build_sequence": build_sequence}
