"""One optimisation step (``train_step``) on a tiny model: μ updates per batch, no step without signal."""
from __future__ import annotations

import pytest
import torch

from reference_impl.grpo.config import Config
from reference_impl.grpo.logprobs import token_logprobs
from reference_impl.grpo.sequences import ServedCall, build_sequence
from reference_impl.grpo.train import World, train_step
from tests.reference_impl.grpo.test_loss import Tiny, _seqs


def _served_by(model) -> list:
    """Single-call sequences whose served log probs are ``model``'s own (a server holding the same weights)."""
    out = []
    for prompt, gen in (([1, 2], [3, 4, 5]), ([1, 6, 7], [8]), ([2, 9], [10, 11])):
        ids = torch.tensor([prompt + gen])
        with torch.no_grad():
            lp = token_logprobs(model, ids, torch.ones_like(ids))[0, len(prompt):].tolist()
        out.append(build_sequence([ServedCall(prompt, gen, lp)]))
    return out


def _adam_steps(opt) -> set[int]:
    return {int(state["step"]) for state in opt.state.values()}


@pytest.mark.parametrize("updates", [1, 3])
def test_each_batch_takes_updates_per_batch_optimiser_steps(updates):
    model = Tiny()
    opt = torch.optim.AdamW(model.parameters(), lr=0.5)
    cfg = Config(lr=0.5, warmup_steps=1, updates_per_batch=updates)
    stats = train_step(model, opt, _served_by(model), [1.0, -1.0, 0.5], cfg, World(), pad_id=0)
    assert stats["token_mult_prob_error"] == pytest.approx(1.0)  # measured at the weights the server sampled
    assert _adam_steps(opt) == {updates}
    # the first update starts at the served log probs' policy; later ones have moved away and the clip bounds them
    assert (stats["clip_fraction"] > 0) == (updates > 1)


def test_a_batch_without_signal_takes_no_step():
    model = Tiny()
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=0.5)
    stats = train_step(model, opt, _seqs(), [0.0, 0.0, 0.0], Config(updates_per_batch=3), World(), pad_id=0)
    assert stats["lr"] == 0.0 and _adam_steps(opt) == set()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
