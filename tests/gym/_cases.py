"""Rollout material for the differential tests, and the two comparisons (ours against the real Gym's).

Items are what a Gym agent carries between calls: user/system messages, tool outputs, and runs of model
items (reasoning, assistant message, function calls) with the bundle on the run's last item. Generated
text puts ``<think>`` blocks anywhere: at the start, mid-text, several, unclosed, stray ``</think>``.
"""
from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from conformance.core import EndpointError
from conformance.client import Bundle, gym_profile, to_messages, to_output_items, training_body

MODEL = "policy"
TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "Look a key up.",
                                           "parameters": {"type": "object", "properties": {"key": {"type": "string"}}}}}]
PIECES = ["<think>", "</think>", " ", "\n", "\n\n", "abc", " def", "X", " Y", "é", "🙂", "{\"a\": 1}", "<tool_call>",
          "<|im_end|>"]

text = st.lists(st.sampled_from(PIECES), max_size=8).map("".join)
think_text = st.builds(lambda a, b, c: f"{a}<think>{b}</think>{c}", text, text, text)
any_text = st.one_of(st.just(""), text, think_text)
ids = st.lists(st.integers(0, 151_000), min_size=1, max_size=6)


@st.composite
def bundles(draw) -> dict[str, Any]:
    gen = draw(ids)
    out = {"prompt_token_ids": draw(ids), "generation_token_ids": gen,
           "generation_log_probs": [-0.5] * len(gen)}
    if draw(st.integers(0, 9)) == 0:
        out["routed_experts"] = "nrlre1:int8:1x1x1:AA=="
    return out


@st.composite
def model_runs(draw, call_ids: list[int]) -> list[dict[str, Any]]:
    """One model call's items as Gym returned them, plus later-agent oddities (empty text, several reasoning)."""
    items: list[dict[str, Any]] = []
    for kind in draw(st.lists(st.sampled_from(["reasoning", "message", "function_call"]), min_size=1, max_size=3)):
        if kind == "reasoning":
            summary = [{"type": "summary_text", "text": t} for t in draw(st.lists(any_text, max_size=2))]
            items.append({"type": "reasoning", "id": "rs_1", "summary": summary})
        elif kind == "message":
            items.append({"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                          "content": [{"type": "output_text", "text": draw(any_text), "annotations": []}]})
        else:
            call_ids.append(len(call_ids))
            items.append({"type": "function_call", "call_id": f"call_{call_ids[-1]}", "id": f"call_{call_ids[-1]}",
                          "name": "lookup", "arguments": json.dumps({"key": draw(text)}), "status": "completed"})
    if draw(st.booleans()) or len(items) == 1:
        items[-1].update(draw(bundles()))
    return items


@st.composite
def item_lists(draw) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if draw(st.booleans()):
        items.append({"role": "system", "content": draw(text)})
    call_ids: list[int] = []
    for _ in range(draw(st.integers(1, 3))):
        user = draw(text) or "q"
        items.append({"role": "user", "content": user} if draw(st.booleans()) else
                     {"type": "message", "role": "user", "content": [{"type": "input_text", "text": user}]})
        run = draw(model_runs(call_ids))
        items += run
        for item in run:
            if item["type"] == "function_call":
                items.append({"type": "function_call_output", "call_id": item["call_id"], "output": draw(text)})
    items.append({"role": "user", "content": "next"})
    return items


@st.composite
def replies(draw, reasoning_parser: bool) -> dict[str, Any]:
    """A chat reply as an endpoint returns it (message-level bundle, Gym's source 1)."""
    msg: dict[str, Any] = {"role": "assistant", "content": draw(st.one_of(st.none(), any_text))}
    if reasoning_parser and draw(st.booleans()):
        msg[draw(st.sampled_from(["reasoning_content", "reasoning"]))] = draw(any_text) or "r"
    if draw(st.booleans()):
        msg["tool_calls"] = [{"id": f"call_{i}", "type": "function",
                              "function": {"name": "lookup", "arguments": json.dumps({"key": draw(text)})}}
                             for i in range(draw(st.integers(1, 2)))]
    msg.update(draw(bundles()))
    return msg


def gym_config(version: str, reasoning_parser: bool, chat_template_kwargs: dict | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"uses_reasoning_parser": reasoning_parser, "model": MODEL}
    if chat_template_kwargs:
        config["chat_template_kwargs"] = chat_template_kwargs
    if gym_profile(version).supports_inline_ids:
        config["request_prompt_and_generation_token_ids"] = True
    return config


def completion(message: dict[str, Any]) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": MODEL,
            "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def _params(tools: bool) -> dict[str, Any]:
    params: dict[str, Any] = {"temperature": 1.0, "top_p": 1.0, "max_output_tokens": 16}
    if tools:  # Responses tool format: the function's fields at top level
        params.update(tools=[{"type": "function", "strict": False, **TOOLS[0]["function"]}], tool_choice="auto", parallel_tool_calls=True)
    return params


def request_difference(gym, items: list[dict[str, Any]], *, reasoning_parser: bool,
                       chat_template_kwargs: dict | None = None) -> str | None:
    """None when the body Gym sends for ``items`` equals ours, else a description of the difference."""
    tools = any(i.get("type") == "function_call" for i in items)
    answer = gym.ask(config=gym_config(gym.version, reasoning_parser, chat_template_kwargs), input=items,
                     params=_params(tools), completion=completion({"role": "assistant", "content": "ok",
                                                                   "prompt_token_ids": [1],
                                                                   "generation_token_ids": [2],
                                                                   "generation_log_probs": [-0.1]}))
    profile = gym_profile(gym.version)
    try:
        messages = to_messages(items, gym=profile, reasoning_parser=reasoning_parser)
    except ValueError as exc:
        ours: Any = {"error": str(exc)}
    else:
        ours = training_body(messages, model=MODEL, tools=TOOLS if tools else None, max_tokens=16,
                             chat_template_kwargs=chat_template_kwargs, inline_ids=profile.supports_inline_ids)
    theirs = answer.get("body") if "body" in answer else {"error": answer.get("error") or answer}
    if ("error" in ours) and ("error" in theirs or answer.get("status", 200) >= 400):
        return None  # both refuse the input
    if json.loads(json.dumps(ours)) != theirs:
        return f"Gym {gym.version} sends\n{json.dumps(theirs, indent=1)}\nours\n{json.dumps(ours, indent=1)}"
    return None


def normalise_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop what carries no meaning: random item ids, constant statuses, null fields."""
    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if x is not None and k != "status"}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v
    out = []
    for item in items:
        item = clean(item)
        if item.get("type") in ("reasoning", "message"):
            item.pop("id", None)
        out.append(item)
    return out


def response_difference(gym, message: dict[str, Any], *, reasoning_parser: bool) -> str | None:
    """None when Gym's output items for this reply equal ours (normalised), else a description."""
    answer = gym.ask(config=gym_config(gym.version, reasoning_parser), input=[{"role": "user", "content": "q"}],
                     params=_params(False), completion=completion(json.loads(json.dumps(message))))
    fields = {k: message[k] for k in ("prompt_token_ids", "generation_token_ids", "generation_log_probs")}
    bundle = Bundle(**fields, source="message", routed_experts=message.get("routed_experts"))
    try:
        ours: Any = normalise_items(to_output_items(message, bundle, gym=gym_profile(gym.version),
                                                    reasoning_parser=reasoning_parser))
    except EndpointError as exc:
        ours = {"error": str(exc)}
    if "response" not in answer or not isinstance(answer["response"], dict):
        return None if "error" in ours else f"Gym {gym.version} failed where we did not: {answer}"
    theirs = normalise_items(answer["response"]["output"])
    if ours != theirs:
        return f"Gym {gym.version} returns\n{json.dumps(theirs, indent=1)}\nours\n{json.dumps(ours, indent=1)}"
    return None
