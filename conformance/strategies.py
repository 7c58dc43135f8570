"""Hypothesis strategies for conversations that stress tokenization and templating (the drift search).

A conversation is plain data (JSON-able, so a shrunk failing example can be stored in the report):
``[{"role": "user", "text": ...}, {"role": "assistant", "text": ..., "resplit": [...]}, {"role": "tool", ...}]``.
Assistant turns are generations the harness supplies; ``resplit`` picks which of the canonical tokens are
replaced by a non-canonical two-piece split derived from the tokenizer vocabulary.
"""
from __future__ import annotations

import functools
import itertools
import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

LIVE_SERVER = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                         HealthCheck.filter_too_much], print_blob=True)
settings.register_profile("ci", max_examples=12, derandomize=True, **LIVE_SERVER)
settings.register_profile("deep", max_examples=200, **LIVE_SERVER)
settings.register_profile("quick", max_examples=4, derandomize=True, **LIVE_SERVER)  # a smoke run of the search

WORDS = ["Skinny", "answer", "Please", "weather", "tokenization", "unbelievable", "don't", "it's"]
UNICODE = ["naïve café", "日本語のテキスト", "🙂👍", "Ωμέγα", "ß→ss", "\u200b", "e\u0301"]
CODE = ["def f(x):\n    return x * 2\n", "for i in range(3): print(i)", "`x = {'a': 1}`", "```python\npass\n```"]


WHITESPACE = [" ", "  ", "\t", "\n", "\n\n", " \n", "\n ", "\t\n", "    ", "\n\n\n"]
# JSON values with the shapes that tokenize differently once re-serialised: nesting, empty containers, unicode,
# escapes, numbers of every kind. A fixed pool (formatted with drawn separators and key order) instead of
# ``st.recursive``: the recursive strategy cost more harness time per example than the server call it feeds.
JSON_VALUES: list[Any] = [
    None, True, 0, -7, 3.25, 1e-7, "", "abc", "a b", "naïve", "日本", 'say "hi"', "back\\slash", "tab\tnew\nline",
    [], {}, [1, 2, 3], ["x", None, False], {"a": 1}, {"b": [], "a": {}}, {"z": 1, "a": 2, "m": 3},
    {"key": {"nested": [1, {"deep": "yes"}]}}, [{"a": 1}, {"b": 2}], {"ünï": "ç", "emoji": "🙂"},
    {"q": "weather in Paris", "days": 3, "unit": "celsius"}, [[], [[]], {"": ""}],
]
TOOL_ARG_KEYS = ["city", "unit", "days", "q"]


# Strategies are built once per vocabulary word list: constructing and validating hypothesis strategies on
# every draw costs more than the draw itself (it showed up as most of the harness time in the benchmark).
_cached = functools.lru_cache(maxsize=None)


@_cached
def whitespace() -> st.SearchStrategy[str]:
    return st.sampled_from(WHITESPACE)


@_cached
def json_fragment() -> st.SearchStrategy[str]:
    return st.builds(_dumps, st.sampled_from(JSON_VALUES), separators(), st.booleans())


@_cached
def separators() -> st.SearchStrategy[tuple[str, str]]:
    return st.sampled_from([(", ", ": "), (",", ":"), (",", ": "), (" ,", " : ")])


def _dumps(value: Any, seps: tuple[str, str], sort: bool) -> str:
    return json.dumps(value, separators=seps, sort_keys=sort, ensure_ascii=False)


@_cached
def fragment(words: tuple[str, ...]) -> st.SearchStrategy[str]:
    word = st.sampled_from(words).map(lambda w: " " + w)
    digits = st.integers(0, 10**9).map(str)
    return st.one_of(word, st.sampled_from(UNICODE), whitespace(), digits, st.sampled_from(CODE), json_fragment())


@_cached
def text(words: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.lists(fragment(words), min_size=1, max_size=4).map("".join)


@_cached
def tool_call(words: tuple[str, ...]) -> st.SearchStrategy[str]:
    """A hermes-style ``<tool_call>`` with varied JSON formatting and key order (P08)."""
    orders = [p for n in (1, 2, 3) for p in itertools.permutations(TOOL_ARG_KEYS, n)]
    args = st.builds(_tool_args, st.sampled_from(orders), st.sampled_from(words), st.integers(0, 99))
    return st.builds(_tool_call, args, separators(), st.booleans(), st.booleans())


def _tool_args(keys: tuple[str, ...], word: str, number: int) -> dict[str, Any]:
    return {k: number if k == "days" else word for k in keys}  # insertion order is the key order sent


def _tool_call(args: dict, seps: tuple[str, str], name_first: bool, newline: bool) -> str:
    a = json.dumps(args, separators=seps)
    body = f'{{"name": "get_weather", "arguments": {a}}}' if name_first else \
        f'{{"arguments":{a},"name":"get_weather"}}'
    return f"<tool_call>\n{body}\n</tool_call>" if newline else f"<tool_call>{body}</tool_call>"


@st.composite
def assistant_turn(draw: st.DrawFn, words: tuple[str, ...]) -> dict[str, Any]:
    reasoning = draw(st.none() | text(words))
    content = draw(st.just("") | text(words))
    calls = draw(st.lists(tool_call(words), max_size=2))
    out = (f"<think>\n{reasoning.strip()}\n</think>\n\n" if reasoning else "") + content
    if calls:
        out = (out + "\n" if out else out) + "\n".join(calls)
    resplit = draw(st.lists(st.integers(0, 63), max_size=4, unique=True))
    truncated = draw(st.booleans()) if not calls else False
    return {"role": "assistant", "text": out, "tool_calls": len(calls), "resplit": sorted(resplit),
            "truncated": truncated}


@st.composite
def conversations(draw: st.DrawFn, words: list[str] | None = None, min_turns: int = 2,
                  max_turns: int = 6) -> list[dict[str, Any]]:
    """2-6 turns mixing user / assistant / tool; tool results only right after an assistant's tool calls."""
    words = tuple(words or WORDS)
    turns: list[dict[str, Any]] = [{"role": "user", "text": draw(text(words))}]
    n = draw(st.integers(min_turns, max_turns))
    while len(turns) < n:
        last = turns[-1]
        if last["role"] == "assistant" and last["tool_calls"]:
            turns.extend({"role": "tool", "text": draw(text(words))} for _ in range(last["tool_calls"]))
        elif last["role"] == "assistant":
            turns.append({"role": "user", "text": draw(text(words))})
        else:
            turns.append(draw(_assistant(words)))
    if turns[-1]["role"] == "assistant":  # the rollout ends with a call the endpoint serves
        turns.append({"role": "user", "text": "Continue."} if not turns[-1]["tool_calls"] else
                     {"role": "tool", "text": "ok"})
    return turns


@_cached
def _assistant(words: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    return assistant_turn(words)
