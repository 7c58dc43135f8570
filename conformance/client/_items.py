"""Responses-style output items and their return trip, as NeMo Gym converts them (contract §6).

Chat message -> ``[reasoning?] [message?] [function_call ...]`` with the token bundle on the LAST item;
on the next call consecutive model items merge back into one assistant message carrying that bundle
unchanged. Reasoning is re-wrapped the way Gym does with ``uses_reasoning_parser``: wrapped into content
as ``<think>…</think>``, split back out into reasoning items, and sent as ``reasoning_content`` (and
``reasoning`` for interleaved reasoning, since vLLM 0.16 renamed the field).
"""
from __future__ import annotations

import json
import re
from typing import Any

from ._extract import REQUIRED, Bundle

THINK = re.compile(r"<think>(.*?)</think>", re.S)
_TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.S)
_MODEL_ITEMS = {"reasoning", "function_call"}
TOKEN_FIELDS = (*REQUIRED, "routed_experts")


def to_output_items(message: dict[str, Any], bundle: Bundle | None) -> list[dict[str, Any]]:
    """One call's chat message as Responses output items; the bundle goes on the last item only."""
    content = message.get("content") or ""
    reasoning = message.get("reasoning") or message.get("reasoning_content")
    if reasoning:
        content = f"<think>{reasoning}</think>{content}"
    items: list[dict[str, Any]] = [{"type": "reasoning", "summary": [{"type": "summary_text", "text": m.group(1)}]}
                                   for m in THINK.finditer(content)]
    text = THINK.sub("", content)
    tool_calls = message.get("tool_calls") or []
    if text or not (items or tool_calls):
        items.append({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]})
    for call in tool_calls:
        fn = call.get("function") or {}
        items.append({"type": "function_call", "call_id": call.get("id"), "id": call.get("id"),
                      "name": fn.get("name"), "arguments": fn.get("arguments")})
    if bundle is not None:
        items[-1].update(bundle.fields())
    return items


def _is_model_item(item: dict[str, Any]) -> bool:
    return item.get("type") in _MODEL_ITEMS or (item.get("type") == "message" and item.get("role") == "assistant")


def to_messages(items: list[dict[str, Any]], *, interleaved_reasoning: bool = True) -> list[dict[str, Any]]:
    """Responses items -> chat messages (``responses_to_chat_completion_create_params``)."""
    out: list[dict[str, Any]] = []
    run: list[dict[str, Any]] = []

    def flush() -> None:
        if not run:
            return
        text = "".join(p.get("text", "") for i in run if i.get("type") == "message" for p in i.get("content", []))
        reasoning = "".join(s.get("text", "") for i in run if i.get("type") == "reasoning"
                            for s in i.get("summary", []))
        msg: dict[str, Any] = {"role": "assistant", "content": text or None}
        calls = [{"id": i["call_id"], "type": "function", "function": {"name": i["name"], "arguments": i["arguments"]}}
                 for i in run if i.get("type") == "function_call"]
        if calls:
            msg["tool_calls"] = calls
        if reasoning:
            msg["reasoning_content"] = reasoning
            if interleaved_reasoning:
                msg["reasoning"] = reasoning
        carriers = [i for i in run if any(k in i for k in REQUIRED)]
        if carriers:  # the last bundle of the run, passed through unchanged
            msg.update({k: carriers[-1][k] for k in TOKEN_FIELDS if k in carriers[-1]})
        out.append(msg)
        run.clear()

    for item in items:
        if _is_model_item(item):
            run.append(item)
            continue
        flush()
        if item.get("type") == "function_call_output":
            out.append({"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]})
        else:
            out.append({"role": item["role"], "content": item["content"]})
    flush()
    return out


def parse_generation(text: str) -> dict[str, Any]:
    """The chat message a qwen3 reasoning parser + hermes tool parser would return for generated ``text``.

    Used for constructed (teacher-forced) turns, so the harness can supply a previous generation whose
    ids it chose. Arguments are re-serialised with ``json.dumps`` exactly as vLLM's hermes parser does:
    the model's own bytes survive only in the ids, which is the point of the on-policy correction.
    """
    msg: dict[str, Any] = {"role": "assistant"}
    if "</think>" in text:
        head, _, text = text.partition("</think>")
        msg["reasoning"] = head.replace("<think>", "", 1).strip("\n")
        text = text.lstrip("\n")
    calls = []
    for n, m in enumerate(_TOOL_CALL.finditer(text)):
        try:
            obj = json.loads(m.group(1))
            calls.append({"id": f"call_{n}", "type": "function",
                          "function": {"name": obj["name"], "arguments": json.dumps(obj.get("arguments", {}),
                                                                                     ensure_ascii=False)}})
        except (ValueError, KeyError, TypeError):
            continue
    if calls:
        msg["tool_calls"] = calls
        text = text[: text.index("<tool_call>")]
    msg["content"] = text.strip() if calls else text
    return msg
