"""Response building with vLLM's parsers, driven by an engine that replays chosen generations.

A replaying engine makes the model's output exact, so the parser cases can be pinned down: tool
calls as OpenAI ``tool_calls`` with JSON-string arguments (E14), reasoning after a history that
already holds ``</think>`` (P12, M21), reasoning fields only with a reasoning parser (E12), and the
logprob floor (E4).
"""
from __future__ import annotations

import asyncio
import json
import math

import pytest
from transformers import AutoTokenizer

from fixtures import fixture_path
from reference_impl.server.engines.base import Engine, GenerateResult
from reference_impl.server.service import Service

from .conftest import TOOLS

EOS = 151645


class Replay(Engine):
    """Returns the next scripted (text, logprobs) as ids; records the prompts it was given."""

    vocab_size, max_model_len, stop_ids = 151936, 1024, frozenset({EOS})

    def __init__(self, tokenizer, outputs):
        self.tokenizer, self.outputs, self.prompts, self.params = tokenizer, list(outputs), [], []

    async def generate(self, prompt_ids, params):
        self.prompts.append(list(prompt_ids))
        self.params.append(params)
        text, lps = self.outputs.pop(0)
        ids = self.tokenizer.encode(text, add_special_tokens=False) + [EOS]
        return GenerateResult(ids, lps or [-0.5] * len(ids), "stop")

    async def reload_weights(self, path):
        return 0


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(fixture_path("tiny-qwen3"))


def _service(tokenizer, outputs, **parsers):
    engine = Replay(tokenizer, outputs)
    return Service(tokenizer, engine, served_model_name="tiny", model_path="x", **parsers), engine


BODY = {"logprobs": True, "top_logprobs": 0, "return_tokens_as_token_ids": True}
BOTH = {"reasoning_parser": "qwen3", "tool_parser": "hermes"}


def _carry(msg):
    return {k: msg[k] for k in ("role", "content", "tool_calls", "reasoning_content", "prompt_token_ids",
                                "generation_token_ids", "generation_log_probs") if msg.get(k) not in (None, [])}


def test_tool_call_is_parsed_into_openai_tool_calls(tokenizer):
    out = '<think>\nneed weather\n</think>\n\n<tool_call>\n{"arguments": {"city":"Paris"}, "name": "get_weather"}\n</tool_call>'
    svc, _ = _service(tokenizer, [(out, None)], **BOTH)
    body = asyncio.run(svc.chat({**BODY, "messages": [{"role": "user", "content": "weather?"}], "tools": TOOLS}))
    choice = body["choices"][0]
    call = choice["message"]["tool_calls"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert call["type"] == "function" and call["id"] and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert choice["message"]["reasoning_content"].strip() == "need weather"


def test_tool_choice_none_leaves_the_text_alone(tokenizer):
    out = '<tool_call>\n{"name": "get_weather", "arguments": {}}\n</tool_call>'
    svc, _ = _service(tokenizer, [(out, None)], **BOTH)
    body = asyncio.run(svc.chat({**BODY, "messages": [{"role": "user", "content": "x"}], "tools": TOOLS,
                                 "tool_choice": "none", "chat_template_kwargs": {"enable_thinking": False}}))
    assert body["choices"][0]["message"]["tool_calls"] == []
    assert "<tool_call>" in body["choices"][0]["message"]["content"]


def test_new_reasoning_after_history_with_think_lands_in_reasoning(tokenizer):
    # P12 / M21 (vllm#32490): the prompt already holds </think>; the new turn's reasoning is still reasoning.
    svc, engine = _service(tokenizer, [("<think>\nfirst\n</think>\n\nA", None), ("<think>\nsecond\n</think>\n\nB", None)],
                           **BOTH)
    msgs = [{"role": "user", "content": "q1"}]
    first = asyncio.run(svc.chat({**BODY, "messages": msgs}))["choices"][0]["message"]
    msgs += [_carry(first), {"role": "user", "content": "q2"}]
    second = asyncio.run(svc.chat({**BODY, "messages": msgs}))["choices"][0]["message"]
    assert 151668 in engine.prompts[1]  # </think> of turn 1 is in the served prompt (not stripped)
    assert second["reasoning_content"].strip() == "second" and second["content"].strip() == "B"


def test_reasoning_fields_only_with_a_reasoning_parser(tokenizer):
    svc, _ = _service(tokenizer, [("<think>\nr\n</think>\n\nc", None)])
    msg = asyncio.run(svc.chat({**BODY, "messages": [{"role": "user", "content": "x"}]}))["choices"][0]["message"]
    assert "reasoning_content" not in msg and "reasoning" not in msg
    assert "<think>" in msg["content"]


def test_logprobs_are_floored_never_nan(tokenizer):
    svc, _ = _service(tokenizer, [("ok", [float("-inf"), float("nan")])])
    body = asyncio.run(svc.chat({**BODY, "messages": [{"role": "user", "content": "x"}]}))
    lps = body["choices"][0]["message"]["generation_log_probs"]
    assert lps == [-9999.0, -9999.0] and all(math.isfinite(x) for x in lps)
    assert [c["logprob"] for c in body["choices"][0]["logprobs"]["content"]] == lps


def test_named_tool_choice_must_name_a_tool_and_fails_before_generation(tokenizer):
    svc, engine = _service(tokenizer, [("x", None)], **BOTH)
    from reference_impl.server.protocol import ApiError

    with pytest.raises(ApiError, match="tool_choice") as err:
        asyncio.run(svc.chat({**BODY, "messages": [{"role": "user", "content": "x"}], "tools": TOOLS,
                              "tool_choice": {"type": "function", "function": {"name": "nope"}}}))
    assert err.value.status == 400 and engine.prompts == []


PICK = [{"type": "function", "function": {"name": "pick", "parameters": {
    "type": "object", "properties": {"c": {"type": "string", "enum": ["a"]}}, "required": ["c"]}}}]


@pytest.mark.parametrize("parsers", [BOTH, {}], ids=["parsers", "no-parsers"])
def test_named_tool_choice_constrains_to_the_parameters_and_returns_the_call(tokenizer, parsers):
    # vLLM's behaviour: the engine is constrained to the named function's parameter schema and the JSON it
    # produced becomes the call, byte for byte -- no tool parser involved.
    svc, engine = _service(tokenizer, [('{"c": "a"}', None)], **parsers)
    body = asyncio.run(svc.chat({**BODY, "messages": [{"role": "user", "content": "x"}], "tools": PICK,
                                 "tool_choice": {"type": "function", "function": {"name": "pick"}},
                                 "chat_template_kwargs": {"enable_thinking": False}}))
    assert engine.params[0].json_schema == PICK[0]["function"]["parameters"]
    msg = body["choices"][0]["message"]
    assert msg["content"] is None and body["choices"][0]["finish_reason"] == "tool_calls"
    assert [(c["type"], c["function"]) for c in msg["tool_calls"]] == [
        ("function", {"name": "pick", "arguments": '{"c": "a"}'})]


def test_required_tool_choice_is_an_array_of_named_calls(tokenizer):
    svc, engine = _service(tokenizer, [('[{"name": "get_weather", "parameters": {"city": "Oslo"}}]', None)], **BOTH)
    body = asyncio.run(svc.chat({**BODY, "messages": [{"role": "user", "content": "x"}], "tools": TOOLS,
                                 "tool_choice": "required", "parallel_tool_calls": False,
                                 "chat_template_kwargs": {"enable_thinking": False}}))
    schema = engine.params[0].json_schema
    assert schema["type"] == "array" and schema["minItems"] == 1 and schema["maxItems"] == 1
    assert schema["items"]["anyOf"][0]["properties"]["name"]["enum"] == ["get_weather"]
    calls = body["choices"][0]["message"]["tool_calls"]
    assert calls[0]["function"]["name"] == "get_weather" and json.loads(calls[0]["function"]["arguments"]) == \
        {"city": "Oslo"}


def test_auto_tool_choice_is_not_constrained(tokenizer):
    svc, engine = _service(tokenizer, [("plain", None)], **BOTH)
    asyncio.run(svc.chat({**BODY, "messages": [{"role": "user", "content": "x"}], "tools": TOOLS}))
    assert engine.params[0].json_schema is None


def test_a_forced_call_cut_by_max_tokens_stays_text(tokenizer):
    svc, _ = _service(tokenizer, [('{"c": ', None)], **BOTH)
    body = asyncio.run(svc.chat({**BODY, "messages": [{"role": "user", "content": "x"}], "tools": PICK,
                                 "tool_choice": {"type": "function", "function": {"name": "pick"}},
                                 "chat_template_kwargs": {"enable_thinking": False}}))
    msg = body["choices"][0]["message"]
    assert msg["tool_calls"] == [] and msg["content"] == '{"c": '
