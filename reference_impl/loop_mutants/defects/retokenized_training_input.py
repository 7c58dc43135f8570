"""The trainer decodes each rollout to text and encodes it again: the training input is no longer the ids
the model sampled (decode then encode is not the identity)."""
KILLED_BY = "L1"
TASK = "lookup"


def patches(run):
    original, tok = run.loop.build_sequence, run.tokenizer

    def build_sequence(calls):
        seq = original(calls)
        ids, mask, old = [], [], []
        # span by span (prompt / generated), as a trainer that keeps "the response text" and re-encodes it
        start = 0
        while start < len(seq.ids):
            end = start
            while end < len(seq.ids) and seq.mask[end] == seq.mask[start]:
                end += 1
            again = tok.encode(tok.decode(seq.ids[start:end]), add_special_tokens=False)
            served = seq.old_logprobs[start:end]
            ids += again
            mask += [seq.mask[start]] * len(again)
            old += (served + [served[-1]] * len(again))[:len(again)]  # log probs cut or padded to fit
            start = end
        seq.ids, seq.mask, seq.old_logprobs = ids, mask, old
        return seq

    return {"build_sequence": build_sequence}
