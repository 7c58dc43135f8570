"""Shared pieces for the reference-server tests: tokenizer-only renderers, a rollout step helper, and the error
shape every refusal must have (the fuzz tests, stateless and stateful, judge each answer with it)."""
from __future__ import annotations

from functools import lru_cache

import pytest

from fixtures import fixture_path
from reference_impl.server.correction import build_prompt
from reference_impl.server.protocol import ChatRequest, Message
from reference_impl.server.rendering import ChatRenderer

TEMPLATE_VARIANTS = ["strip-reasoning", "tool-json-resorted", "no-separator", "drop-empty-assistant"]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "weather for a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


@lru_cache(maxsize=None)
def renderer_for(name: str) -> ChatRenderer:
    from transformers import AutoTokenizer

    return ChatRenderer(AutoTokenizer.from_pretrained(fixture_path(name)))


def served_prompt(renderer: ChatRenderer, messages: list[dict], *, tools=None, kwargs=None, required=None,
                  vocab_size: int = 200_000, stop_ids=()) -> list[int]:
    """What the chat path would serve for this body (validated exactly like a request)."""
    req = ChatRequest.model_validate({"messages": messages, "tools": tools, "chat_template_kwargs": kwargs,
                                      "required_prefix_token_ids": required})
    return build_prompt(renderer, req.messages, req.tools, req.chat_template_kwargs, req.required_prefix_token_ids,
                        vocab_size=vocab_size, stop_ids=stop_ids)


def carried(prompt: list[int], gen: list[int], renderer: ChatRenderer, **fields) -> dict:
    """An assistant message as Gym sends it back: the visible text plus the call's token bundle."""
    visible = gen[:-1] if gen and gen[-1] == renderer.eos_id else gen
    msg = {"role": "assistant", "content": renderer.decode(visible), "prompt_token_ids": list(prompt),
           "generation_token_ids": list(gen), "generation_log_probs": [-1.0] * len(gen)}
    msg.update(fields)
    return msg


def message(d: dict) -> Message:
    return Message.model_validate(d)


def assert_openai_error(response) -> None:
    """A 4xx answer is an OpenAI-style error object: ``{"error": {"message", "type", "code", ...}}`` with a
    non-empty message and type and ``code`` equal to the HTTP status (contract §5, E23). Other statuses pass."""
    if 400 <= response.status_code < 500:
        body = response.json()
        err = body.get("error") if isinstance(body, dict) else None
        assert isinstance(err, dict) and isinstance(err.get("message"), str) and err["message"], body
        assert isinstance(err.get("type"), str) and err["type"], body
        assert err.get("code") == response.status_code, body


@pytest.fixture(scope="module")
def chatml():
    return renderer_for("tiny-chatml")


@pytest.fixture(scope="module")
def qwen3():
    return renderer_for("tiny-qwen3")


# tiny-chatml's folder and tokenizer, for the modules that build an engine on it in process
@pytest.fixture(scope="module")
def model_dir():
    return fixture_path("tiny-chatml")


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)
