"""Property (hypothesis): over generated multi-turn conversations and generated token sequences, the
prompt served for turn k+1 starts with turn k's prompt + generation (contract M1), with exactly one
end-of-turn token after a truncated generation and none added after one that ended on EOS (M11)."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import TEMPLATE_VARIANTS, TOOLS, carried, renderer_for, served_prompt

TEMPLATES = ["tiny-chatml", "tiny-qwen3"] + [f"tiny-chatml-drift-{v}" for v in TEMPLATE_VARIANTS
                                             if v != "drop-empty-assistant"]
# Ordinary (non-added) ids per tokenizer: sampled text, never a special token in the middle.
ORDINARY = {"tiny-chatml": (7, 999), "tiny-qwen3": (0, 151642)}

words = st.text(alphabet=st.sampled_from("abcdefghij klmnop,.?!\n"), min_size=1, max_size=30).filter(str.strip)


@st.composite
def turn(draw, lo, hi):
    """One model call: (kind, reasoning, free ids, tool args, ended on EOS)."""
    kind = draw(st.sampled_from(["text", "text", "tool"]))
    reasoning = draw(st.none() | words)
    free = draw(st.lists(st.integers(lo, hi), min_size=1, max_size=10))
    args = draw(st.dictionaries(st.sampled_from(["city", "day", "unit"]), words, max_size=2))
    spacing = draw(st.sampled_from([(", ", ": "), (",", ":"), ("  ,", " :  ")]))
    return kind, reasoning, free, args, spacing, draw(st.booleans())


def _model_ids(r, reasoning, free, kind, args, spacing):
    ids = []
    if reasoning is not None:
        ids += r.tokenizer.encode(f"<think>\n{reasoning}\n</think>\n\n", add_special_tokens=False)
    ids += free
    if kind == "tool":  # the model's own JSON bytes, key order and spacing (P08)
        body = json.dumps({"name": "get_weather", "arguments": args}, separators=spacing)
        ids += r.tokenizer.encode(f"<tool_call>\n{body}\n</tool_call>", add_special_tokens=False)
    return ids


@pytest.mark.parametrize("name", TEMPLATES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_served_prompts_are_prefix_monotonic(name, data):
    r = renderer_for(name)
    lo, hi = ORDINARY["tiny-qwen3" if name == "tiny-qwen3" else "tiny-chatml"]
    kwargs = {"enable_thinking": data.draw(st.booleans())} if name == "tiny-qwen3" else None
    msgs = [{"role": "user", "content": data.draw(words)}]
    if data.draw(st.booleans()):
        msgs.insert(0, {"role": "system", "content": data.draw(words)})
    prompt = served_prompt(r, msgs, tools=TOOLS, kwargs=kwargs)
    for kind, reasoning, free, args, spacing, ended in data.draw(st.lists(turn(lo, hi), min_size=1, max_size=4)):
        gen = _model_ids(r, reasoning, free, kind, args, spacing) + ([r.eos_id] if ended else [])
        visible = r.decode(gen[:-1] if ended else gen)
        extra = {}
        if reasoning is not None:
            extra["reasoning_content"] = reasoning
            visible = visible.split("</think>", 1)[-1]
        if kind == "tool":
            extra["tool_calls"] = [{"id": "call_0", "type": "function",
                                    "function": {"name": "get_weather", "arguments": json.dumps(args)}}]
            visible = visible.split("<tool_call>", 1)[0]
        msgs.append(carried(prompt, gen, r, content=visible, **extra))
        msgs.append({"role": "tool", "tool_call_id": "call_0", "content": data.draw(words)} if kind == "tool"
                    else {"role": "user", "content": data.draw(words)})
        nxt = served_prompt(r, msgs, tools=TOOLS, kwargs=kwargs)
        head = prompt + gen
        assert nxt[:len(head)] == head, "P_{k+1} must start with P_k + G_k (M1)"
        assert (nxt[len(head)] == r.eos_id) != ended, "exactly one end-of-turn token after G_k (M11/M17)"
        prompt = nxt
