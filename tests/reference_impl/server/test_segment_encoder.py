"""The renderer's piecewise, cached tokenization gives exactly the ids of ``apply_chat_template(tokenize=True)``.

``SegmentEncoder`` cuts rendered text at the tokenizer's own added tokens and tokenizes each piece once
(``reference_impl/server/rendering.py``); served ids must not change by a single token. Judged against the
tokenizer itself: on generated text full of special-token look-alikes, on multi-turn renders of every template,
warm and cold, and on tokenizers where cutting would be wrong (which must fall back to whole-text tokenization).
"""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_impl.server.protocol import ChatRequest
from reference_impl.server.rendering import ChatRenderer, SegmentEncoder, template_message, template_tools

from .conftest import TEMPLATE_VARIANTS, TOOLS, renderer_for

TEMPLATES = ["tiny-qwen3", "tiny-chatml"] + [f"tiny-chatml-drift-{v}" for v in TEMPLATE_VARIANTS]
FRAGMENTS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<tool_call>", "</tool_call>",
             "<|im_", "end|>", "<|", "|>", "<", ">", "</", "<think", "think>", "<|im_end|><|im_end|>",
             "\n", "\n\n", " ", "  ", "\t", "user", "assistant", " hello", "world", "é", "€", "日本語", "🙂",
             "{\"city\": \"Paris\"}", "123", " 4567", "'s", "\r\n", "\u00a0", "a" * 40]
text = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=8), max_size=30).map("".join)


def tokenize(tokenizer, s: str) -> list[int]:
    return list(tokenizer(s, add_special_tokens=False)["input_ids"])


@pytest.mark.parametrize("name", ["tiny-qwen3", "tiny-chatml"])
def test_the_fixture_tokenizers_are_cut_at_their_turn_tokens(name):
    encoder = renderer_for(name).encoder
    assert {"<|im_start|>", "<|im_end|>"} <= set(encoder.split_tokens)


@pytest.mark.parametrize("name", ["tiny-qwen3", "tiny-chatml"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(text, min_size=1, max_size=4))
def test_pieces_encode_like_the_whole_text(name, texts):
    tokenizer = renderer_for(name).tokenizer
    encoder = SegmentEncoder(tokenizer, budget_chars=200)  # a small cache: eviction happens too
    for s in texts + texts:  # cold, then again with its pieces remembered
        assert encoder.encode(s) == tokenize(tokenizer, s), s


def _conversation(turns: int, *, reasoning: bool, tool: bool) -> list[dict]:
    msgs = [{"role": "system", "content": "You are a helpful travel assistant."}]
    for i in range(turns):
        msgs.append({"role": "user", "content": f"Turn {i}: what about day {i}? <|im_end|> is just text here"})
        reply = {"role": "assistant", "content": f"Day {i} looks fine.\n\n Pack  light."}
        if reasoning:
            reply["reasoning_content"] = f"The user asks about day {i}."
        msgs.append(reply)
        if tool and i % 2:
            msgs.append({"role": "assistant", "content": "", "tool_calls": [{"id": f"c{i}", "type": "function", "function": {
                "name": "get_weather", "arguments": json.dumps({"city": "Paris", "day": i})}}]})
            msgs.append({"role": "tool", "tool_call_id": f"c{i}", "content": '{"temp_c": 14}'})
    msgs.append({"role": "user", "content": "And the last day?"})
    return msgs


@pytest.mark.parametrize("name", TEMPLATES)
@pytest.mark.parametrize("reasoning,tool", [(False, False), (True, False), (True, True)])
def test_renders_are_apply_chat_templates_ids(name, reasoning, tool):
    renderer = renderer_for(name)
    kwargs_list = [None, {"enable_thinking": False}] if name == "tiny-qwen3" else [None]
    for kwargs in kwargs_list:
        for turns in (0, 1, 3, 8, 3):  # growing, then a shorter one again, as the rollouts of a group interleave
            req = ChatRequest.model_validate({"messages": _conversation(turns, reasoning=reasoning, tool=tool),
                                              "tools": TOOLS})
            for through, generation_prompt in ((req.messages, True), (req.messages[:-1], False)):
                want = renderer.tokenizer.apply_chat_template(
                    [template_message(m) for m in through], tools=template_tools(req.tools),
                    add_generation_prompt=generation_prompt, tokenize=True, return_dict=True, **(kwargs or {}))
                got = renderer.render(through, req.tools, kwargs, add_generation_prompt=generation_prompt)
                assert got == list(want["input_ids"]), (name, turns, generation_prompt, kwargs)


def test_template_kwargs_that_change_tokenization_are_left_to_apply_chat_template(qwen3):
    msgs = ChatRequest.model_validate({"messages": _conversation(2, reasoning=False, tool=False)}).messages
    kwargs = {"truncation": True, "max_length": 7}
    want = qwen3.tokenizer.apply_chat_template([template_message(m) for m in msgs], add_generation_prompt=True,
                                               tokenize=True, return_dict=True, **kwargs)["input_ids"]
    assert qwen3.render(msgs, None, kwargs, add_generation_prompt=True) == list(want)
    assert len(want) == 7


def _toy_tokenizer(*, prepend_scheme: str, extra_tokens: list[str] = ()):
    """A word-level tokenizer with a Metaspace pre-tokenizer and ChatML-style added tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["▁hello", "▁world", "hello", "world", "▁user", "user", "▁a", "a", "▁", "<unk>"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=prepend_scheme)
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="<|im_end|>")
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>", *extra_tokens]})
    tok.chat_template = ("{% for m in messages %}<|im_start|>{{ m.role }} {{ m.content }}<|im_end|>{% endfor %}"
                         "{% if add_generation_prompt %}<|im_start|>assistant {% endif %}")
    return tok


def test_a_pre_tokenizer_that_marks_only_the_first_piece_is_tokenized_whole():
    tok = _toy_tokenizer(prepend_scheme="first")
    renderer = ChatRenderer(tok)
    assert renderer.encoder.split_tokens == {}  # the probe saw pieces encode differently alone
    msgs = ChatRequest.model_validate({"messages": [{"role": "user", "content": "hello world"},
                                                    {"role": "assistant", "content": "a"},
                                                    {"role": "user", "content": "world"}]}).messages
    want = tok.apply_chat_template([template_message(m) for m in msgs], add_generation_prompt=True, tokenize=True,
                                   return_dict=True)["input_ids"]
    assert renderer.render(msgs, None, None, add_generation_prompt=True) == list(want)


def test_added_tokens_that_overlap_others_are_never_cut_at():
    tok = _toy_tokenizer(prepend_scheme="always", extra_tokens=["<|im_end|>x", "end|><"])
    encoder = SegmentEncoder(tok)
    assert "<|im_end|>" not in encoder.split_tokens  # inside "<|im_end|>x", overlapping "end|><"
    assert "<|im_start|>" not in encoder.split_tokens  # "end|><" ends where it starts
    for s in ["<|im_start|>user hello<|im_end|>x<|im_start|>a", "<|im_end|><|im_start|>world", "hello world"]:
        got = encoder.encode(s)
        assert got is None or got == tokenize(tok, s)


def test_a_pre_tokenizer_that_marks_every_piece_is_cut():
    tok = _toy_tokenizer(prepend_scheme="always")
    encoder = SegmentEncoder(tok)
    assert {"<|im_start|>", "<|im_end|>"} <= set(encoder.split_tokens)
    for s in ["<|im_start|>user hello world<|im_end|><|im_start|>a", "hello<|im_end|>world", ""]:
        assert encoder.encode(s) == tokenize(tok, s)
