"""A response cut at max_tokens is trained as if complete: an end-of-turn id appended and trained on."""
KILLED_BY = "R9"
TASK = "lookup"


def patches(run):
    original = run.loop.build_sequence
    eos = run.tokenizer.convert_tokens_to_ids("<|im_end|>")

    def build_sequence(calls):
        seq = original(calls)
        if calls[-1].finish_reason == "length":
            seq.ids.append(eos)  # "close" the response the way a finished one ends
            seq.mask.append(1)
            seq.old_logprobs.append(0.0)
        return seq

    return {"build_sequence": build_sequence}
