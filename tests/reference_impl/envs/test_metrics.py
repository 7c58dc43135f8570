"""``/aggregate_metrics``: mean, min and max of the answers' top-level numbers, in Gym's optional shape."""
from __future__ import annotations

import pytest

from reference_impl.envs.errors import ApiError
from reference_impl.envs.metrics import aggregate_metrics


def test_numbers_are_summarised_and_the_reward_parts_are_the_key_metrics():
    answers = [{"reward": 1.0, "format": 0.2, "answer": 0.8, "tool_calls": 1, "extracted_answer": "7",
                "mask_sample": False, "session_tool_calls": None},
               {"reward": 0.2, "format": 0.2, "answer": 0.0, "tool_calls": 3}]
    metrics = aggregate_metrics({"verify_responses": answers})
    assert metrics["key_metrics"] == pytest.approx({"mean/reward": 0.6, "mean/format": 0.2, "mean/answer": 0.4})
    agent = metrics["agent_metrics"]
    assert agent["count"] == 2 and agent["min/tool_calls"] == 1 and agent["max/tool_calls"] == 3
    assert not any("mask_sample" in k or "extracted_answer" in k for k in agent)  # booleans, text: not numbers
    assert metrics["group_level_metrics"] == []


def test_an_empty_batch_has_a_count_and_nothing_else():
    assert aggregate_metrics({"verify_responses": []}) == {"agent_metrics": {"count": 0}, "key_metrics": {},
                                                           "group_level_metrics": []}


@pytest.mark.parametrize("body, param", [({}, "verify_responses"), ({"verify_responses": {}}, "verify_responses"),
                                         ({"verify_responses": [1]}, "verify_responses[0]")])
def test_a_bad_body_is_a_422_naming_the_field(body, param):
    with pytest.raises(ApiError) as caught:
        aggregate_metrics(body)
    assert caught.value.status == 422 and caught.value.param == param
