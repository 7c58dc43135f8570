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
        self.tokenizer, self.outputs, self.prompts = tokenizer, list(outputs), []

    async def generate(self, prompt_ids, params):
        self.prompts.append(list(prompt_ids))
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
