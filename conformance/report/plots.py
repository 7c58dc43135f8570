"""Plots for the HTML report, as self-contained SVG data URIs (no network, no script): matplotlib when it is
installed (the ``train`` extra), none otherwise. Pure: numbers in, image text out."""
from __future__ import annotations

import base64
import io
import math
from typing import Any, Sequence


def _figure():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg", force=False)  # never a window
    import matplotlib.pyplot as plt
    return plt


def _uri(plt, fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue().encode()).decode()


def logprob_plots(served: Sequence[float], rescored: Sequence[float],
                  metrics: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """Served vs re-scored log probs (scatter against the diagonal) and their per-position difference; [] when
    matplotlib is missing or there is nothing to draw."""
    pairs = [(s, r) for s, r in zip(served, rescored)
             if isinstance(s, (int, float)) and isinstance(r, (int, float)) and math.isfinite(s) and math.isfinite(r)]
    plt = _figure()
    if plt is None or not pairs:
        return []
    xs, ys = [r for _, r in pairs], [s for s, _ in pairs]
    low = min(xs + ys)
    error = (metrics or {}).get("token_mult_prob_error")
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.scatter(xs, ys, s=9, alpha=0.6, color="#c62828")
    ax.plot([low, 0], [low, 0], color="#5a6270", linewidth=0.8, label="served = re-scored")
    ax.set_xlabel("re-scored log prob (trainer's weights)")
    ax.set_ylabel("served generation_log_probs")
    ax.set_title("served vs re-scored" + (f"  (token_mult_prob_error {error:.4f})" if error else ""), fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    scatter = {"title": "Served vs re-scored log probs", "uri": _uri(plt, fig)}
    fig, ax = plt.subplots(figsize=(6.4, 2.6))
    ax.bar(range(len(pairs)), [s - r for s, r in pairs], color="#3b6fb6", width=1.0)
    ax.axhline(0, color="#5a6270", linewidth=0.8)
    ax.set_xlabel("generated position (calls concatenated)")
    ax.set_ylabel("served − re-scored (nats)")
    deltas = {"title": "Per-position log-prob difference", "uri": _uri(plt, fig)}
    return [scatter, deltas]


def search_plot(metrics: dict[str, Any]) -> list[dict[str, str]]:
    """How a drift search reached its minimal failing conversation: examples until the first failure, then
    shrink steps; [] without matplotlib or those numbers."""
    first, shrink = metrics.get("first_failing_example"), metrics.get("shrink_steps")
    plt = _figure()
    if plt is None or not isinstance(first, int) or not isinstance(shrink, int):
        return []
    fig, ax = plt.subplots(figsize=(6.4, 1.4))
    ax.barh([0], [first], color="#c62828", label=f"examples until the first failure ({first})")
    ax.barh([0], [shrink], left=[first], color="#d98a00", label=f"shrink steps to the minimal example ({shrink})")
    ax.set_yticks([])
    ax.set_xlabel("conversations driven through the endpoint")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.6), ncol=2, frameon=False)
    return [{"title": "Drift search: examples tried and shrink steps", "uri": _uri(plt, fig)}]
