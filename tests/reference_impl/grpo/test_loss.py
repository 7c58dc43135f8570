"""The GRPO loss: aggregation by hand, zero gradient off the mask, micro-batches equal the full batch."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from reference_impl.grpo.logprobs import token_logprobs
from reference_impl.grpo.loss import collate, grpo_loss
from reference_impl.grpo.sequences import ServedCall, build_sequence


class Tiny(torch.nn.Module):
    """A bigram model: enough to have real gradients through token_logprobs."""

    def __init__(self, vocab=16):
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(vocab, 8)
        self.out = torch.nn.Linear(8, vocab)

    def forward(self, input_ids, attention_mask=None, logits_to_keep=0):
        hidden = self.emb(input_ids)[:, -logits_to_keep:]  # transformers' convention: the last N (0 = all)
        return SimpleNamespace(logits=self.out(hidden))


def _seqs():
    return [build_sequence([ServedCall([1, 2], [3, 4, 5], [-1.0, -2.0, -0.5])]),
            build_sequence([ServedCall([1, 6, 7], [8], [-3.0])]),
            build_sequence([ServedCall([2], [9, 10], [-0.2, -0.1]), ServedCall([2, 9, 10, 11], [12], [-0.7])])]


def test_token_and_sequence_aggregation_match_hand_computation():
    model, seqs, adv = Tiny(), _seqs(), [1.0, -0.5, 2.0]
    batch = collate(seqs, adv, pad_id=0)
    logp = token_logprobs(model, batch.ids, batch.attention)
    per_token = []
    for b, s in enumerate(seqs):
        per_token.append([-torch.clamp(torch.exp(logp[b, t] - s.old_logprobs[t]), 0.8, 1.2).item() * adv[b]
                          if adv[b] < 0 else
                          -min(torch.exp(logp[b, t] - s.old_logprobs[t]).item(), 1.2) * adv[b]
                          for t in range(len(s.ids)) if s.mask[t]])
    tokens = sum(len(p) for p in per_token)
    loss, metrics = grpo_loss(logp, batch, normalizer=tokens, aggregation="token")
    assert float(loss) == pytest.approx(sum(sum(p) for p in per_token) / tokens, rel=1e-5)
    loss, _ = grpo_loss(logp, batch, normalizer=len(seqs), aggregation="sequence")
    assert float(loss) == pytest.approx(sum(sum(p) / len(p) for p in per_token) / len(seqs), rel=1e-5)
    assert metrics["tokens"] == tokens == 7


def test_prompt_and_padding_positions_get_no_gradient():
    model, seqs = Tiny(), _seqs()
    batch = collate(seqs, [1.0, -0.5, 2.0], pad_id=0)
    logp = token_logprobs(model, batch.ids, batch.attention)
    logp.retain_grad()
    loss, _ = grpo_loss(logp, batch, normalizer=float(batch.mask.sum()))
    loss.backward()
    assert torch.all(logp.grad[batch.mask == 0] == 0)
    assert torch.any(logp.grad[batch.mask == 1] != 0)  # (clipped tokens have none either)


@pytest.mark.parametrize("aggregation", ["token", "sequence"])
def test_micro_batches_with_the_global_normaliser_give_the_full_batch_gradient(aggregation):
    seqs, adv = _seqs(), [1.0, -0.5, 2.0]
    full = Tiny()
    batch = collate(seqs, adv, 0)
    norm = float(batch.mask.sum()) if aggregation == "token" else 3.0
    grpo_loss(token_logprobs(full, batch.ids, batch.attention), batch, normalizer=norm,
              aggregation=aggregation)[0].backward()
    parts = Tiny()
    for chunk in ([0], [1, 2]):
        b = collate([seqs[i] for i in chunk], [adv[i] for i in chunk], 0)
        grpo_loss(token_logprobs(parts, b.ids, b.attention), b, normalizer=norm, aggregation=aggregation)[0].backward()
    for p, q in zip(full.parameters(), parts.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6)


def test_mismatch_metrics_and_truncated_importance_sampling():
    model, seqs = Tiny(), _seqs()
    batch = collate(seqs, [1.0, 1.0, 1.0], 0)
    logp = token_logprobs(model, batch.ids, batch.attention)
    _, m = grpo_loss(logp, batch, normalizer=7.0)
    delta = (logp.detach() - batch.old_logprobs)[batch.mask == 1]
    assert m["token_mult_prob_error"] == pytest.approx(float(torch.exp(delta.abs()).mean()), rel=1e-5)
    assert m["mismatch_k3"] == pytest.approx(float((torch.exp(delta) - 1 - delta).mean()), rel=1e-5)
    capped, _ = grpo_loss(logp, batch, normalizer=7.0, tis_cap=1.0)
    weights = torch.exp(delta).clamp(max=1.0)
    assert float(capped) == pytest.approx(float(-(weights).sum() / 7.0), rel=1e-5)  # ratio 1 vs own log probs


def test_unknown_aggregation_is_named():
    model, seqs = Tiny(), _seqs()
    batch = collate(seqs, [1.0, 1.0, 1.0], 0)
    with pytest.raises(ValueError, match="unknown loss aggregation 'bnpo'"):
        grpo_loss(token_logprobs(model, batch.ids, batch.attention), batch, normalizer=1.0, aggregation="bnpo")

