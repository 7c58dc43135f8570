"""Our client's conversions against the real NeMo Gym's, version by version (docs/gym-versions.md).

Request direction: Responses items -> the chat body Gym's ``vllm_model`` sends upstream (its converter, then
its preprocessing). Response direction: a chat reply -> the Responses output items Gym hands the agent.
Both run Gym's own code (``scripts/gym_bridge.py`` in the side environment) beside ours on hypothesis-
generated material, and must agree exactly.
"""
from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conformance.client import _gym, _items

from ._cases import item_lists, replies, request_difference, response_difference

DIFF = settings(max_examples=120, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# The issue's cases: a generation with a think block mid-text, as Gym hands it back and as returned verbatim.
MID_TEXT = [{"role": "user", "content": "hi"},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": " bothering"}]},
            {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": "X Y</think> Z", "annotations": []}],
             "prompt_token_ids": [1, 2], "generation_token_ids": [3, 4], "generation_log_probs": [-0.1, -0.2]},
            {"role": "user", "content": "next"}]
EMPTY_TURN = [{"role": "user", "content": "hi"},
              {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": "", "annotations": []}],
               "prompt_token_ids": [1, 2], "generation_token_ids": [151645], "generation_log_probs": [-0.1]},
              {"role": "user", "content": "next"}]
TWO_BLOCKS = [{"role": "user", "content": "hi"},
              {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": "a<think>b</think>c<think>d</think>e", "annotations": []}],
               "prompt_token_ids": [1], "generation_token_ids": [3], "generation_log_probs": [-0.1]},
              {"role": "user", "content": "next"}]
FIXED = [MID_TEXT, EMPTY_TURN, TWO_BLOCKS]


@pytest.mark.parametrize("reasoning_parser", [True, False], ids=["parser-on", "parser-off"])
@given(items=item_lists())
@example(items=MID_TEXT).via("issue: think block mid-text")
@example(items=EMPTY_TURN).via("issue: empty assistant turn")
@example(items=TWO_BLOCKS).via("several blocks")
@DIFF
def test_request_body_equals_gyms(gym, reasoning_parser, items):
    difference = request_difference(gym, items, reasoning_parser=reasoning_parser)
    assert difference is None, difference


@pytest.mark.parametrize("reasoning_parser", [True, False], ids=["parser-on", "parser-off"])
@given(data=st.data())
@DIFF
def test_output_items_equal_gyms(gym, reasoning_parser, data):
    message = data.draw(replies(reasoning_parser))
    difference = response_difference(gym, message, reasoning_parser=reasoning_parser)
    assert difference is None, difference


@pytest.mark.parametrize("message", [
    {"role": "assistant", "content": "abc<think> Alexandria</think> def"},
    {"role": "assistant", "content": "X<think> bothering</think> Y</think> Z", "reasoning_content": "first"},
    {"role": "assistant", "content": ""},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_0", "type": "function", "function": {"name": "lookup", "arguments": "{\"key\": \"a\"}"}}]},
], ids=["mid-text-block", "stray-close-tag", "empty", "tool-call-only"])
def test_issue_replies_equal_gyms(gym, message):
    message = {**message, "prompt_token_ids": [1], "generation_token_ids": [2, 3], "generation_log_probs": [-1, -2]}
    assert response_difference(gym, message, reasoning_parser=True) is None


def test_chat_template_kwargs_reach_the_body_as_gyms(gym):
    assert request_difference(gym, MID_TEXT, reasoning_parser=True,
                              chat_template_kwargs={"enable_thinking": False}) is None


def test_an_injected_rule_change_is_caught(gym, monkeypatch):
    """The comparison has teeth: change one conversion rule and Gym's own code disagrees on a fixed case."""
    def keep_every_block(msg, interleaved):  # e.g. "all blocks become reasoning", not Gym's first-block rule
        blocks = _items.THINK.findall(msg.get("content") or "")
        msg["content"] = _items.THINK.sub("", msg.get("content") or "")
        if blocks and interleaved:
            msg["reasoning_content"] = msg["reasoning"] = "".join(blocks)
    monkeypatch.setattr(_items, "_split_reasoning", keep_every_block)
    assert request_difference(gym, TWO_BLOCKS, reasoning_parser=True) is not None
    monkeypatch.undo()

    flipped = dataclasses.replace(_gym.GYM_PROFILES[gym.version],
                                  drops_empty_assistant=not _gym.GYM_PROFILES[gym.version].drops_empty_assistant)
    monkeypatch.setitem(_gym.GYM_PROFILES, gym.version, flipped)
    assert request_difference(gym, EMPTY_TURN, reasoning_parser=True) is not None


def test_client_reports_the_dropped_turn_as_its_own(gym):
    """Gym 0.4.0 drops the empty turn with its ids; the client says so instead of blaming the endpoint."""
    findings: list[str] = []
    messages = _items.to_messages(EMPTY_TURN, gym=_gym.gym_profile(gym.version), findings=findings)
    if _gym.gym_profile(gym.version).drops_empty_assistant:
        assert [m["role"] for m in messages] == ["user", "user"] and "Gym 0.4.0 drops" in findings[0]
    else:
        assert [m["role"] for m in messages] == ["user", "assistant", "user"] and not findings


@pytest.mark.parametrize("endpoints", [1, 2, 3, 5])
def test_session_routing_over_data_parallel_ranks_equals_gyms(gym, endpoints):
    """The load tier (R10) sends each session where Gym's model server would: Gym's own _resolve_client over as many
    base URLs, for session ids as Gym makes them (uuid4) and as the load tier names them, in the same order."""
    import uuid

    ids = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(40)] + [f"s{i:05d}r{k}" for i in range(30) for k in (0, 1)]
    ids += ids[:10]  # sessions seen again keep their endpoint
    urls = [f"http://127.0.0.1:{9000 + k}/v1" for k in range(endpoints)]
    router = _gym.SessionRouter(endpoints, _gym.gym_profile(gym.version))
    assert [router.route(s) for s in ids] == gym.affinity(urls, ids)
