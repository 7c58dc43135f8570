"""The GRPO objective on padded token batches (pure torch; no IO).

Per completion token t with advantage A (the sequence's), trainer log prob log π, old log prob log μ:
  ratio  ρ = exp(log π − log μ_old)
  pg     = −min(ρ·A, clip(ρ, 1−ε_low, 1+ε_high)·A)                  (PPO, Schulman et al. 2017, eq. 7)
  kl     = exp(log π_ref − log π) − (log π_ref − log π) − 1          (k3, Schulman 2020 "Approximating KL")
  loss_t = pg + β·kl
μ_old is the server's ``generation_log_probs`` (R11): on the first update of a batch ρ ≈ 1 and the clip only
guards against trainer/server mismatch; later updates on the same batch (``updates_per_batch``, μ in GRPO's
Algorithm 1) move ρ away from 1 and the clip bounds them. With truncated importance sampling (``tis_cap``,
Yao et al. 2025) the ratio is taken against the trainer's own log probs before the batch's first update
(``trainer_old``) and each token is weighted by min(π_trainer_old / μ_served, cap), correcting for the server
sampling from a slightly different policy.

Aggregation (design anchors §3.2): ``token`` = sum over every completion token of the global batch divided by
their number (DAPO; TRL ``dapo``, verl ``token-mean``); ``sequence`` = token mean per sequence, then mean
over sequences (original GRPO). ``normalizer`` is the global token (or sequence) count, so data-parallel
ranks that each sum their share and all-reduce gradients get exactly the single-process loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

AGGREGATIONS = ("token", "sequence")  # also listed in Config.check (config must not import torch)


@dataclass
class Batch:
    ids: torch.Tensor         # [B, T] long, right-padded
    attention: torch.Tensor   # [B, T] 1 on real tokens
    mask: torch.Tensor        # [B, T] float, 1 on generated tokens (the loss mask)
    old_logprobs: torch.Tensor  # [B, T] served log probs at masked positions
    advantages: torch.Tensor  # [B] one per sequence


def collate(seqs, advantages, pad_id: int) -> Batch:
    width = max(len(s.ids) for s in seqs)

    def padded(rows, fill, dtype):
        return torch.tensor([list(r) + [fill] * (width - len(r)) for r in rows], dtype=dtype)

    return Batch(padded([s.ids for s in seqs], pad_id, torch.long),
                 padded([[1] * len(s.ids) for s in seqs], 0, torch.long),
                 padded([s.mask for s in seqs], 0, torch.float32),
                 padded([s.old_logprobs for s in seqs], 0.0, torch.float32),
                 torch.tensor(list(advantages), dtype=torch.float32))


def grpo_loss(logp: torch.Tensor, batch: Batch, *, normalizer: float, clip_low: float = 0.2,
              clip_high: float = 0.2, aggregation: str = "token", kl_coef: float = 0.0,
              ref_logp: torch.Tensor | None = None, tis_cap: float | None = None,
              trainer_old: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """(loss to backpropagate, metrics); ``normalizer`` = global completion tokens (token) or sequences."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown loss aggregation {aggregation!r}; known: {', '.join(AGGREGATIONS)}")
    m = batch.mask
    adv = batch.advantages.unsqueeze(1)
    if tis_cap is not None:
        old = logp.detach() if trainer_old is None else trainer_old
        weight = torch.exp(old - batch.old_logprobs).clamp(max=tis_cap)
    else:
        old, weight = batch.old_logprobs, torch.ones_like(logp)
    ratio = torch.exp(logp - old)
    clipped = ratio.clamp(1 - clip_low, 1 + clip_high)
    per_token = -torch.minimum(ratio * adv, clipped * adv) * weight
    kl = torch.zeros_like(logp)
    if kl_coef and ref_logp is not None:
        d = ref_logp - logp
        kl = torch.exp(d) - d - 1
        per_token = per_token + kl_coef * kl
    if aggregation == "token":
        loss = (per_token * m).sum() / normalizer
    else:
        loss = ((per_token * m).sum(1) / m.sum(1).clamp(min=1)).sum() / normalizer
    with torch.no_grad():
        n = m.sum().clamp(min=1)
        delta = (logp.detach() - batch.old_logprobs) * m
        r = torch.exp(delta)
        metrics = {
            "clip_fraction": float((((ratio - clipped).abs() > 0).float() * m).sum() / n),
            "kl_ref": float((kl * m).sum() / n),
            # train/serve mismatch (contract §13): exp|Δ| and k3 = r − 1 − log r with r = π/μ, over masked tokens
            "token_mult_prob_error": float((torch.exp(delta.abs()) * m).sum() / n),
            "mismatch_k3": float(((r - 1 - delta) * m).sum() / n),
            "tokens": float(m.sum()),
        }
    return loss, metrics
