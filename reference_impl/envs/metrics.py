"""``POST /aggregate_metrics``: summary numbers over a batch of ``/verify`` answers.

Gym's rollout collection (``ng_collect_rollouts``) ends by asking each agent for aggregate metrics, and the
simple agent forwards that to its resources server; a server without the route fails the whole collection
after its last rollout. Gym's own profiler computes a much richer report; this one is deliberately small
-- mean, min and max of every top-level number the answers carry (``reward``, the reward components, the
tool counts) -- in the shape Gym's ``AggregateMetrics`` model reads, whose every field is optional.
"""
from __future__ import annotations

from math import fsum
from typing import Any

from .errors import invalid, require_object

KEY_METRICS = ("reward", "format", "answer")


def _numbers(answer: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in answer.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def aggregate_metrics(body: dict[str, Any]) -> dict[str, Any]:
    """``{"verify_responses": [...]}`` -> ``{"agent_metrics", "key_metrics", "group_level_metrics"}``."""
    if "verify_responses" not in body:
        raise invalid("verify_responses", "missing; send the /verify answers to aggregate")
    answers = body["verify_responses"]
    if not isinstance(answers, list):
        raise invalid("verify_responses", "must be an array of /verify answers")
    columns: dict[str, list[float]] = {}
    for i, answer in enumerate(answers):
        for name, value in _numbers(require_object(answer, f"verify_responses[{i}]")).items():
            columns.setdefault(name, []).append(value)
    agent_metrics: dict[str, Any] = {"count": len(answers)}
    for name, values in sorted(columns.items()):
        agent_metrics.update({f"mean/{name}": fsum(values) / len(values), f"min/{name}": min(values),
                              f"max/{name}": max(values)})
    key_metrics = {k: v for k, v in agent_metrics.items() if k in {f"mean/{m}" for m in KEY_METRICS}}
    return {"agent_metrics": agent_metrics, "key_metrics": key_metrics, "group_level_metrics": []}
