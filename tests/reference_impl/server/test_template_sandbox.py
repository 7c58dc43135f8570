"""The sandbox's checks remembered per (type, attribute) change no render and refuse everything Jinja refuses.

``reference_impl/server/template_sandbox.py`` speeds up transformers' chat-template environment. Judged against
the same environment with the memo taken off (Jinja's own ``getattr``): identical text or the identical error on
generated conversations for every fixture template, cold and warm; the sandbox's refusals (private attributes,
methods that mutate, ``str.format`` reaching into objects) still refused on first and later sight.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment
from transformers.utils.chat_template_utils import _compile_jinja_template

from reference_impl.server.template_sandbox import chat_template_environments, remember_attribute_checks

from .conftest import TEMPLATE_VARIANTS, TOOLS, renderer_for

TEMPLATES = ["tiny-qwen3", "tiny-chatml"] + [f"tiny-chatml-drift-{v}" for v in TEMPLATE_VARIANTS]

words = st.sampled_from(["hello", " world", "\n", "<think>", "</think>", "<tool_call>", "{\"a\": 1}", "é", ""])
text = st.lists(words | st.text(max_size=6), max_size=6).map("".join)
call = st.fixed_dictionaries({"id": st.sampled_from(["c1", "c2"]), "type": st.just("function"),
                              "function": st.fixed_dictionaries({"name": st.sampled_from(["get_weather", "x"]),
                                                                 "arguments": st.sampled_from(['{"city": "P"}', "{}"])})})
message = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "user"]), "content": text}),
    st.fixed_dictionaries({"role": st.just("assistant"), "content": text},
                          optional={"reasoning_content": text, "tool_calls": st.lists(call, min_size=1, max_size=2),
                                    # keys that are also dict methods: Jinja reads the method, not the key
                                    "items": text, "get": text}),
    st.fixed_dictionaries({"role": st.just("tool"), "content": text, "tool_call_id": st.just("c1")}))


def _outcome(render, *args, **kwargs) -> str:
    """The rendered text, or the error as text: a template refusing something must refuse it the same way with
    the memo as without."""
    try:
        return render(*args, **kwargs)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def _render(tokenizer, messages, tools, add_generation_prompt):
    return _outcome(tokenizer.apply_chat_template, messages, tools=tools, add_generation_prompt=add_generation_prompt,
                    tokenize=False)


@pytest.mark.parametrize("name", TEMPLATES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=st.lists(message, min_size=1, max_size=8), with_tools=st.booleans(), gen=st.booleans())
def test_renders_are_those_of_the_plain_sandbox(name, messages, with_tools, gen):
    tokenizer = renderer_for(name).tokenizer
    (env,) = chat_template_environments(tokenizer)
    tools = TOOLS if with_tools else None
    del env.getattr  # Jinja's own checks on every read
    try:
        plain = _render(tokenizer, messages, tools, gen)
    finally:
        assert remember_attribute_checks(env)  # a fresh memo: the first render decides, the second remembers
    assert _render(tokenizer, messages, tools, gen) == plain
    assert _render(tokenizer, messages, tools, gen) == plain


def test_the_renderer_installs_it_where_apply_chat_template_renders():
    tokenizer = renderer_for("tiny-qwen3").tokenizer
    env = _compile_jinja_template(tokenizer.chat_template).environment
    assert getattr(env.getattr, "remembers_checks", False)
    assert not remember_attribute_checks(env)  # once only


def test_a_warm_render_asks_the_sandbox_nothing():
    tokenizer = renderer_for("tiny-qwen3").tokenizer
    (env,) = chat_template_environments(tokenizer)
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a", "reasoning_content": "r"},
                {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {
                    "name": "get_weather", "arguments": {"city": "P"}}}]},
                {"role": "tool", "content": "14 C", "tool_call_id": "c1"}, {"role": "user", "content": "and?"}]
    tokenizer.apply_chat_template(messages, tools=TOOLS, add_generation_prompt=True, tokenize=False)
    asked = []
    real = env.is_safe_attribute
    env.is_safe_attribute = lambda *a: asked.append(a[1]) or real(*a)
    try:
        tokenizer.apply_chat_template(messages, tools=TOOLS, add_generation_prompt=True, tokenize=False)
    finally:
        del env.is_safe_attribute
    assert asked == []


@pytest.mark.parametrize("source, context", [
    ("{{ messages.append(1) }}", {"messages": []}),             # mutates a list
    ("{{ m.update({}) }}", {"m": {}}),                          # mutates a dict
    ("{{ s.__class__.__mro__ }}", {"s": "x"}),                  # private attributes
    ("{{ l.pop() }}", {"l": [1]}),
    ("{{ s.format(m) }}", {"s": "{0.__class__.__mro__}", "m": {}}),  # str.format reaching into an object
    ("{{ s.format_map(m) }}", {"s": "{a.__class__.__mro__}", "m": {"a": 1}}),
    ("{% set ns = namespace(f=s.format) %}{{ ns.f(m) }}", {"s": "{0.__class__.__mro__}", "m": {}}),
])
def test_what_the_sandbox_refuses_stays_refused(source, context):
    plain = _outcome(ImmutableSandboxedEnvironment().from_string(source).render, **context)
    assert plain.startswith("SecurityError: ")
    env = ImmutableSandboxedEnvironment()
    assert remember_attribute_checks(env)
    template = env.from_string(source)
    assert [_outcome(template.render, **context) for _ in range(3)] == [plain] * 3  # first sight and remembered


def test_keys_named_like_methods_and_missing_names_read_as_jinja_reads_them():
    source = ("{{ m.items is callable }} {{ m.role }} {{ m.nope is defined }} {{ l.nope is defined }} "
              "{{ s.upper() }} {% for x in l %}{{ loop.index0 }}{{ loop.last }}{% endfor %} "
              "{% set ns = namespace(a=1) %}{{ ns.a }} {{ ns.b is defined }}")
    context = {"m": {"items": "key", "role": "user"}, "l": [1, 2], "s": "abc"}
    plain = ImmutableSandboxedEnvironment().from_string(source).render(**context)
    env = ImmutableSandboxedEnvironment()
    assert remember_attribute_checks(env)
    template = env.from_string(source)
    assert [template.render(**context) for _ in range(3)] == [plain] * 3
    assert plain == "True user False False ABC 0False1True 1 False"


def test_other_sandboxes_are_left_alone():
    assert not remember_attribute_checks(SandboxedEnvironment())  # its checks may differ: not ours to remember
