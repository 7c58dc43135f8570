"""The loss mask covers everything after the first generated token: tool output and template tokens too."""
KILLED_BY = "R4"
TASK = "lookup"


def patches(run):
    original = run.loop.build_sequence

    def build_sequence(calls):
        seq = original(calls)
        first = seq.mask.index(1)
        seq.mask = [0] * first + [1] * (len(seq.mask) - first)  # "the response" taken as one span
        return seq

    return {"build_sequence": build_sequence}
