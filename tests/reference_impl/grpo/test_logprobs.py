"""The trainer's log probs: what the loss reads equals one plain pass, with shared prompts run once."""
from __future__ import annotations

import random

import pytest
import torch

from reference_impl.grpo.logprobs import token_logprobs
from reference_impl.grpo.loss import collate
from reference_impl.grpo.sequences import ServedCall, build_sequence
from tests.reference_impl.grpo.test_loss import Tiny, _seqs


@pytest.fixture(scope="module")
def qwen2():
    """A random small Qwen2: transformers' real attention, cache and ``logits_to_keep``."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    return Qwen2ForCausalLM(Qwen2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=2, num_key_value_heads=1)).eval()


def _groups(prompt_lengths, group_size=3, turns=1, seed=0):
    """Rows as a GRPO step has them: ``group_size`` completions of each prompt, of different lengths, each of
    ``turns`` calls (later calls add a tool turn after the previous generation: mask holes)."""
    rng = random.Random(seed)
    seqs = []
    for n in prompt_lengths:
        prompt = [rng.randrange(3, 64) for _ in range(n)]
        for _ in range(group_size):
            calls, history = [], list(prompt)
            for _ in range(turns):
                gen = [rng.randrange(3, 64) for _ in range(rng.randrange(1, 7))]
                calls.append(ServedCall(history, gen, [-1.0] * len(gen)))
                history = history + gen + [rng.randrange(3, 64) for _ in range(rng.randrange(1, 4))]
            seqs.append(build_sequence(calls))
    return collate(seqs, [0.0] * len(seqs), pad_id=0)


def _grads(model, logp, mask):
    model.zero_grad()
    (logp * mask * torch.linspace(-1, 1, logp.numel()).view_as(logp)).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    return grads


@pytest.mark.parametrize("prompt_lengths,turns", [((9, 9), 1), ((5, 11, 8), 1), ((7, 12), 3)],
                         ids=["equal-prompts", "ragged-prompts", "multi-turn"])
def test_shared_prompts_give_the_full_pass_values_and_gradients(qwen2, prompt_lengths, turns):
    batch = _groups(prompt_lengths, turns=turns)
    full = token_logprobs(qwen2, batch.ids, batch.attention)
    passes = []
    hook = qwen2.register_forward_hook(lambda m, args, kw, out: passes.append(tuple(kw["input_ids"].shape)),
                                       with_kwargs=True)
    try:
        shared = token_logprobs(qwen2, batch.ids, batch.attention, batch.mask)
    finally:
        hook.remove()
    rows = len(prompt_lengths) * 3
    assert [p[0] for p in passes] == [len(prompt_lengths), rows]  # each prompt once, then every completion
    assert sum(p[0] * p[1] for p in passes) < rows * batch.ids.shape[1]
    on = batch.mask.bool()
    assert torch.allclose(shared[on], full[on], atol=1e-5)
    starts = batch.mask.argmax(1)
    assert all(torch.all(shared[i, :int(s)] == 0) for i, s in enumerate(starts))  # prompts are not the loss's
    for a, b in zip(_grads(qwen2, full, batch.mask), _grads(qwen2, shared, batch.mask)):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


def test_distinct_prompts_take_one_pass_from_the_first_generated_position(qwen2):
    batch = _groups((4, 6, 9), group_size=1)  # nothing to share: one pass, output layer from position 4 on
    full = token_logprobs(qwen2, batch.ids, batch.attention)
    kept = token_logprobs(qwen2, batch.ids, batch.attention, batch.mask)
    on = batch.mask.bool()
    assert torch.all(kept[:, :4] == 0) and (full[:, 1:4] != 0).all()
    assert torch.allclose(kept[on], full[on], atol=1e-5)


def test_a_row_that_trains_nothing_falls_back_to_one_pass(qwen2):
    batch = _groups((6, 6), group_size=2)
    batch.mask[1] = 0  # a sample the loop masked out entirely
    kept = token_logprobs(qwen2, batch.ids, batch.attention, batch.mask)
    full = token_logprobs(qwen2, batch.ids, batch.attention)
    on = batch.mask.bool()
    assert torch.allclose(kept[on], full[on], atol=1e-5)


def test_a_model_without_logits_to_keep_semantics_is_cut_the_same_way():
    """The bigram ``Tiny`` of the loss tests follows transformers' convention (the last N positions, 0 = all)."""
    model, seqs = Tiny(), _seqs()
    batch = collate(seqs[:2], [0.0] * 2, pad_id=0)  # rows generate from positions 2 and 3
    kept = token_logprobs(model, batch.ids, batch.attention, batch.mask)
    full = token_logprobs(model, batch.ids, batch.attention)
    assert torch.all(kept[:, :2] == 0) and torch.allclose(kept[:, 2:], full[:, 2:])
