"""Training-inference mismatch metrics over per-token log probs (contract §13)."""
from __future__ import annotations

import math
from typing import Sequence


def logprob_metrics(reference: Sequence[float], served: Sequence[float]) -> dict[str, float]:
    """Compare trainer-side (teacher-forced) ``reference`` log probs with the endpoint's ``served`` ones.

    token_mult_prob_error = mean exp(|Δ|) (NeMo RL); k3 KL(μ‖π) = mean(r - 1 - log r) with r = π/μ, samples
    from μ (the served policy); max/mean |Δ| as slime reports them.
    """
    if len(reference) != len(served):
        raise ValueError(f"length mismatch: {len(reference)} reference vs {len(served)} served log probs")
    if not served:
        return {"tokens": 0, "token_mult_prob_error": 1.0, "k3_kl": 0.0, "max_abs_diff": 0.0, "mean_abs_diff": 0.0}
    deltas = [p - q for p, q in zip(reference, served)]  # log π − log μ
    k3 = [math.exp(d) - 1.0 - d for d in deltas]
    return {
        "tokens": len(deltas),
        "token_mult_prob_error": sum(math.exp(abs(d)) for d in deltas) / len(deltas),
        "k3_kl": sum(k3) / len(k3),
        "max_abs_diff": max(abs(d) for d in deltas),
        "mean_abs_diff": sum(abs(d) for d in deltas) / len(deltas),
    }


def log_softmax(logits: Sequence[float], temperature: float = 1.0) -> list[float]:
    """``log_softmax(logits / τ)``: the processed-logprob reference for E20."""
    scaled = [x / temperature for x in logits]
    top = max(scaled)
    norm = top + math.log(sum(math.exp(x - top) for x in scaled))
    return [x - norm for x in scaled]
