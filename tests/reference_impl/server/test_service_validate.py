"""Request bodies validated from their raw JSON bytes give what validating the decoded value gives: the same model,
or the same 4xx (service.validate, issue 13's long-history overhead)."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_impl.server import service
from reference_impl.server.protocol import (ApiError, ChatRequest, CompletionRequest, DetokenizeRequest,
                                            ReloadRequest, TokenizeRequest)
from reference_impl.server.service import decode_json, json_value, validate

MODELS = [ChatRequest, TokenizeRequest, CompletionRequest, DetokenizeRequest, ReloadRequest]

# Values chosen to sit on the edges of the strict types: bools where ints are wanted, floats that are whole
# numbers, ints past 64 bits, non-finite floats, strings where numbers are wanted, nulls, containers.
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.integers(), st.integers(2**63, 2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 1.0, -1.0, 0.5, 1e400]),
                    st.text(max_size=8), st.sampled_from(["auto", "none", "required", "user", "assistant", "tiny"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
ids = st.one_of(st.lists(st.integers(0, 151_935), max_size=6), st.lists(scalars, max_size=3), scalars)
logprobs = st.one_of(st.lists(st.one_of(st.floats(-20, 0), st.integers(-3, 0)), max_size=6), st.lists(scalars, max_size=3))


def mostly(valid, weird=None):
    """A plausible value nine times in ten, else an arbitrary one: both sides of every check get exercised. (The
    arbitrary one is drawn on a middle value: hypothesis favours the ends of a range.)"""
    weird = weird if weird is not None else st.one_of(scalars, json_values)
    return st.integers(0, 9).flatmap(lambda roll: weird if roll == 7 else valid)


@st.composite
def messages(draw):
    role = draw(mostly(st.sampled_from(["system", "user", "assistant", "tool"]), st.sampled_from([3, None, "bot"])))
    msg = {"role": role, "content": draw(mostly(st.one_of(st.text(max_size=20), st.none(), st.lists(
        st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=8)}), max_size=2))))}
    if draw(st.integers(0, 3 if role == "assistant" else 12)) == 0:  # a bundle, mostly consistent
        n = draw(st.integers(1, 4))
        msg["prompt_token_ids"] = draw(mostly(st.lists(st.integers(0, 151_935), min_size=1, max_size=6), ids))
        msg["generation_token_ids"] = draw(mostly(st.lists(st.integers(0, 151_935), min_size=n, max_size=n), ids))
        msg["generation_log_probs"] = draw(mostly(st.lists(st.one_of(st.floats(-20, 0), st.integers(-3, 0)),
                                                           min_size=n, max_size=n), logprobs))
    if role == "assistant" and draw(st.integers(0, 3)) == 0:
        msg["tool_calls"] = draw(mostly(st.lists(st.fixed_dictionaries(
            {"id": st.text(max_size=4), "type": st.just("function"),
             "function": st.fixed_dictionaries({"name": st.text(max_size=6),
                                                "arguments": st.one_of(st.text(max_size=8), json_values)})}),
            max_size=2)))
    for key in ("reasoning_content", "name", "tool_call_id"):
        if draw(st.integers(0, 3)) == 0:
            msg[key] = draw(mostly(st.text(max_size=6)))
    return msg


token_ids = st.lists(st.integers(0, 151_935), max_size=5)
FIELDS = {
    "model": st.just("tiny"), "temperature": st.one_of(st.floats(0, 2), st.integers(0, 2)),
    "top_p": st.floats(0.01, 1), "top_k": st.just(-1), "n": st.just(1), "seed": st.integers(0, 2**31),
    "stop": st.one_of(st.text(max_size=4), st.lists(st.text(max_size=4), max_size=2)), "stop_token_ids": token_ids,
    "stream": st.just(False), "max_tokens": st.integers(0, 100), "max_completion_tokens": st.integers(1, 100),
    "logprobs": st.one_of(st.booleans(), st.integers(0, 5)), "top_logprobs": st.integers(0, 5),
    "tool_choice": st.sampled_from(["auto", "none"]), "parallel_tool_calls": st.booleans(), "echo": st.booleans(),
    "chat_template_kwargs": st.dictionaries(st.text(max_size=5), json_values, max_size=2),
    "required_prefix_token_ids": st.lists(st.integers(0, 151_935), min_size=1, max_size=5),
    "return_tokens_as_token_ids": st.booleans(), "return_token_ids": st.booleans(),
    "prompt": st.one_of(st.text(max_size=8), token_ids), "tokens": token_ids, "path": st.text(max_size=8),
    "add_special_tokens": st.booleans(), "prompt_logprobs": st.integers(0, 5), "include_reasoning": st.booleans(),
    "tools": st.lists(st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries(
        {"name": st.text(min_size=1, max_size=6), "parameters": st.just({"type": "object", "properties": {}})})}),
        max_size=2),
}


@st.composite
def bodies(draw):
    body = {}
    if draw(st.integers(0, 9)) != 7:
        body["messages"] = draw(mostly(st.lists(messages(), min_size=1, max_size=4)))
    for field in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=6, unique=True)):
        body[field] = draw(mostly(FIELDS[field]))
    return draw(json_values) if draw(st.integers(0, 19)) == 13 else body


def outcome(model, body):
    """The validated model (its dump, with every value's type) or the refusal, as comparable text."""
    try:
        return "ok " + repr(validate(model, body).model_dump())
    except ApiError as exc:
        return f"refused {exc.status} {exc.body()}"


def same(a: str, b: str) -> bool:
    return a == b or ("nan" in a and a.replace("nan", "NaN") == b.replace("nan", "NaN"))


@settings(max_examples=400, deadline=None)
@given(bodies(), st.sampled_from(MODELS), st.booleans())
def test_bytes_validate_as_the_decoded_value_does(body, model, ascii_only):
    raw = json.dumps(body, ensure_ascii=ascii_only).encode()
    decoded = json.loads(raw)
    assert same(outcome(model, raw), outcome(model, decoded))


@pytest.mark.parametrize("raw", [
    b"", b"   ", b"{", b"[1, 2]", b"null", b'"text"', b"42", b"\xef\xbb\xbf{}", b"{\"messages\": [}",
    '{"messages": [{"role": "user", "content": "\\ud800"}]}'.encode(),  # a lone surrogate: json.loads only
    b'{"messages": [{"role": "user", "content": "a"}], "temperature": NaN}',
    b'{"messages": [{"role": "user", "content": "a"}], "temperature": 1e400}',
    b'{"messages": [{"role": "user", "content": "a"}], "max_tokens": 5, "max_tokens": "5"}',  # the last key wins
    b'{"messages": [{"role": "user", "content": "a"}], "max_tokens": "5", "max_tokens": 5}',
    b'{"messages": [{"role": "assistant", "content": "a", "prompt_token_ids": [1], "generation_token_ids": [2],'
    b' "generation_log_probs": [-1]}, {"role": "user", "content": "b"}]}',
    b'{"messages": [{"role": "user", "content": "a"}], "seed": 100000000000000000000000}',
    "{\"messages\": [{\"role\": \"user\", \"content\": \"caf\u00e9 \u2603\"}]}".encode(),
    "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}".encode("utf-16"),
])
@pytest.mark.parametrize("model", MODELS)
def test_edge_bodies_validate_as_the_decoded_value_does(raw, model):
    try:
        decoded = decode_json(raw)
    except ApiError as exc:  # not JSON at all: the bytes are refused with the same 400
        with pytest.raises(ApiError) as got:
            validate(model, raw)
        assert got.value.body() == exc.body() and got.value.status == 400
        return
    a, b = outcome(model, raw), outcome(model, decoded)
    assert same(a, b)
    if "temperature" in model.model_fields and isinstance(decoded, dict) and math.isinf(decoded.get("temperature", 0)):
        assert a.startswith("refused 400")  # out of the range, however it came


def test_a_valid_body_is_never_decoded_into_python_values(monkeypatch):
    """The point of validating bytes: a long history's ids become the model's lists once, not twice."""
    def refuse(raw):
        raise AssertionError("decoded")

    monkeypatch.setattr(service, "decode_json", refuse)
    body = {"messages": [{"role": "user", "content": "a"},
                         {"role": "assistant", "content": "b", "prompt_token_ids": list(range(1, 500)),
                          "generation_token_ids": [7, 8], "generation_log_probs": [-0.5, -1.0]},
                         {"role": "user", "content": "c"}], "max_tokens": 4, "temperature": 1.0}
    req = validate(ChatRequest, json.dumps(body).encode())
    assert req.messages[1].prompt_token_ids == list(range(1, 500)) and req.temperature == 1.0
    with pytest.raises(AssertionError, match="decoded"):  # a refused body is decoded, to refuse it as before
        validate(ChatRequest, b'{"messages": []}')


def test_json_value_decodes_bytes_and_leaves_values():
    assert json_value(b'{"n": 1}') == {"n": 1}
    assert json_value(bytearray(b"[1]")) == [1]
    value = {"n": 2}
    assert json_value(value) is value
    with pytest.raises(ApiError, match="malformed JSON"):
        json_value(b"{")
