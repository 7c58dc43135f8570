"""The drift-search strategies generate well-formed conversations that still vary what re-tokenizes."""
from __future__ import annotations

import json

from hypothesis import given, settings

from conformance.client import parse_generation
from conformance.strategies import CODE, UNICODE, WORDS, conversations, json_fragment, text, tool_call

WORD_TUPLE = tuple(WORDS)


@settings(max_examples=150, deadline=None)
@given(conversations(WORD_TUPLE))
def test_conversations_are_shaped_like_rollouts(turns):
    assert 2 <= len(turns) and turns[0]["role"] == "user"
    assert turns[-1]["role"] in ("user", "tool")  # the endpoint serves the final call
    pending = 0
    for prev, turn in zip(turns, turns[1:]):
        if turn["role"] == "tool":
            assert prev["role"] in ("assistant", "tool")
        if prev["role"] == "assistant" and prev["tool_calls"]:
            pending = prev["tool_calls"]
        if turn["role"] == "tool":
            pending -= 1
        if turn["role"] == "assistant":
            assert pending <= 0, "an assistant turn before every tool call got its result"
    for turn in turns:
        if turn["role"] == "assistant":
            assert turn["resplit"] == sorted(set(turn["resplit"]))
            assert not (turn["truncated"] and turn["tool_calls"]), "a cut turn cannot carry a whole tool call"


@settings(max_examples=100, deadline=None)
@given(json_fragment())
def test_json_fragments_are_json(text):
    json.loads(text)


@settings(max_examples=100, deadline=None)
@given(tool_call(WORD_TUPLE))
def test_tool_calls_parse_back_to_their_arguments(text):
    calls = parse_generation(text).get("tool_calls")
    assert calls and calls[0]["function"]["name"] == "get_weather"
    assert isinstance(json.loads(calls[0]["function"]["arguments"]), dict)


def test_tool_calls_vary_key_order_and_spacing():
    seen: set[str] = set()

    @settings(max_examples=200, deadline=None, database=None)
    @given(tool_call(WORD_TUPLE))
    def collect(text):
        seen.add(text)

    collect()
    orders = {tuple(json.loads(parse_generation(t)["tool_calls"][0]["function"]["arguments"])) for t in seen}
    assert any(len(o) > 1 and list(o) != sorted(o) for o in orders), "no unsorted key order was generated"
    assert any('":"' in t for t in seen) and any('": "' in t for t in seen), "spacing never varied"


def test_texts_reach_every_stress_class():
    texts: list[str] = []

    @settings(max_examples=200, deadline=None, database=None)
    @given(text(WORD_TUPLE))
    def collect(t):
        texts.append(t)

    collect()
    joined = "\x00".join(texts)
    classes = {"word": any(" " + w in joined for w in WORDS), "unicode": any(u in joined for u in UNICODE),
               "code": any(c in joined for c in CODE), "digits": any(ch.isdigit() for ch in joined),
               "json": "{" in joined or "[" in joined, "whitespace": any(w in joined for w in ("\t", "\n\n"))}
    assert all(classes.values()), classes
