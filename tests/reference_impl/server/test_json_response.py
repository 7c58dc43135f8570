"""Chat, completion and tokenize responses are serialised by pydantic's serializer (``app.FastJSONResponse``), not
``json.dumps``: the document must be the one Starlette's ``JSONResponse`` writes, value for value.

Judged on generated JSON values: parsing the fast body and writing it again with ``json.dumps`` gives Starlette's
bytes exactly (so keys, order, strings and escapes are the same, and every float parses back to the same double,
sign of zero included), and whatever ``json.dumps`` refuses (NaN, infinities, a lone surrogate) is still refused
with its own error.
"""
from __future__ import annotations

import json
import math

import pytest
from fastapi.responses import JSONResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_impl.server.app import FastJSONResponse

WORDS = ["NaN", "Infinity", "-Infinity", "token_id:151645", "\u2028", "\x7f", "é€🙂", "\"", "\\", "\n\t\x00"]
scalars = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([-0.0, -1e-05, -9999.0, 1e16, 5e-324])
           | st.text() | st.sampled_from(WORDS))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=6)
                      | st.dictionaries(st.text(max_size=6) | st.sampled_from(WORDS), inner, max_size=6), max_leaves=40)


def _floats(value) -> list[tuple[float, float]]:
    """Every float in a value with its sign, so that -0.0 and 0.0 are told apart."""
    if isinstance(value, float):
        return [(value, math.copysign(1.0, value))]
    if isinstance(value, list):
        return [f for v in value for f in _floats(v)]
    if isinstance(value, dict):
        return [f for v in value.values() for f in _floats(v)]
    return []


@settings(max_examples=400, deadline=None)
@given(value=values)
def test_the_same_document_as_json_dumps(value):
    fast, slow = FastJSONResponse(value).body, JSONResponse(value).body
    assert JSONResponse(json.loads(fast)).body == slow
    assert _floats(json.loads(fast)) == _floats(json.loads(slow))


def test_a_chat_response_body_is_byte_identical():
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "tiny", "choices": [{
        "index": 0, "message": {"role": "assistant", "content": "Il fait beau à Paris 🙂\n", "tool_calls": [],
                                "prompt_token_ids": list(range(1500)), "generation_token_ids": [1, 2, 151645],
                                "generation_log_probs": [-0.5, -9999.0, -1.25]},
        "finish_reason": "stop", "stop_reason": None, "logprobs": None, "token_ids": [1, 2, 151645]}],
        "usage": {"prompt_tokens": 1500, "completion_tokens": 3, "total_tokens": 1503}}
    assert FastJSONResponse(body).body == JSONResponse(body).body


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), "\ud800"])
def test_what_json_dumps_refuses_is_still_refused(bad):
    with pytest.raises(ValueError) as slow:
        JSONResponse({"x": [bad]})
    with pytest.raises(ValueError) as fast:
        FastJSONResponse({"x": [bad]})
    assert type(fast.value) is type(slow.value) and str(fast.value) == str(slow.value)
