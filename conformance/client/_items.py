"""Responses output items and their return trip, exactly as NeMo Gym converts them (contract §6).

Two directions, each the composition of Gym's steps, per Gym version (``_gym.GymProfile``):

- reply -> items: Gym's model server wraps a returned reasoning field into content as ``<think>…</think>``
  (``uses_reasoning_parser``), then its converter takes EVERY ``<think>`` block out of the text wherever it
  sits, each block's text a reasoning summary, and puts the bundle on the last item only.
- items -> chat messages: the converter merges a run of model items into one assistant message (reasoning
  summaries re-wrapped into its text as ``<think>`` blocks; the run's last bundle attached unchanged), then
  the model server's preprocessing removes every block from the text again and sends the FIRST block's
  text as ``reasoning_content`` and ``reasoning`` (``uses_interleaved_reasoning``).

So a generation with a think block mid-text comes back with the block moved out of ``content``; an endpoint
must accept that (its ids are the truth). The tests in ``tests/gym/`` compare these functions with the
real Gym, version by version.
"""
from __future__ import annotations

import json
import re
import uuid
from typing import Any

from ..core import EndpointError
from ._extract import REQUIRED, Bundle
from ._gym import GymProfile, gym_profile

THINK = re.compile(r"<think>(.*?)</think>", re.S)  # Gym's THINK_TAG_PATTERN: non-greedy, across lines
_TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.S)
TOKEN_FIELDS = (*REQUIRED, "routed_experts")


def _text_of(parts: Any) -> str:
    if isinstance(parts, str):
        return parts
    return "".join(p.get("text", "") for p in parts or [] if isinstance(p, dict) and isinstance(p.get("text"), str))


def to_output_items(message: dict[str, Any], bundle: Bundle | None, *, gym: GymProfile | None = None,
                    reasoning_parser: bool = True) -> list[dict[str, Any]]:
    """One call's chat reply as Responses output items (Gym's model server + ``postprocess_assistant_message_dict``)."""
    gym = gym or gym_profile()
    if bundle is not None and isinstance(bundle.routed_experts, str) and not gym.routed_experts_envelope:
        raise EndpointError(f"Gym {gym.version} cannot take routed_experts as a string envelope "
                            f"({bundle.routed_experts[:24]!r}…): its training item validation fails and the rollout "
                            "is lost (Gym 0.7.0 accepts it)")
    content = message.get("content") or ""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning_parser and reasoning:
        content = f"<think>{reasoning}</think>{content}"
    elif reasoning:  # Gym asserts: a reasoning field without uses_reasoning_parser is a config mismatch
        raise EndpointError("the endpoint returned a reasoning field but Gym runs with uses_reasoning_parser: false "
                            "(Gym asserts they match, contract §3.4)")
    refusal = (message.get("refusal") or "") if gym.carries_refusals else ""
    summaries = THINK.findall(content) if reasoning_parser else []
    if reasoning_parser:
        content = THINK.sub("", content)
    items: list[dict[str, Any]] = []
    if summaries:
        items.append({"type": "reasoning", "id": f"rs_{uuid.uuid4().hex}", "status": "completed",
                      "summary": [{"type": "summary_text", "text": t} for t in summaries]})
    tool_calls = message.get("tool_calls") or []
    empty = not (items or tool_calls or refusal)
    if content or refusal or empty:
        parts: list[dict[str, Any]] = []
        if content or empty:
            parts.append({"type": "output_text", "text": content, "annotations": []})
        if refusal:
            parts.append({"type": "refusal", "refusal": str(refusal)})
        items.append({"type": "message", "id": f"msg_{uuid.uuid4().hex}", "role": "assistant", "status": "completed",
                      "content": parts})
    for call in tool_calls:
        fn = call.get("function") or {}
        items.append({"type": "function_call", "call_id": call.get("id"), "id": call.get("id"),
                      "name": fn.get("name"), "arguments": fn.get("arguments"), "status": "completed"})
    if bundle is not None:
        items[-1].update(bundle.fields())
    return items


def _is_model_item(item: dict[str, Any]) -> bool:
    kind = item.get("type") or ("message" if item.get("role") else None)
    return kind in ("reasoning", "function_call") or (kind == "message" and item.get("role") == "assistant")


def _bundle_of(item: dict[str, Any], gym: GymProfile) -> dict[str, Any] | None:
    """The token fields an item contributes to its run, by the version's carrier rule."""
    if not gym.routed_experts_envelope and isinstance(item.get("routed_experts"), str):
        return None  # the item fails validation as a training item and is read as a plain one
    if gym.bundle_needs_nonempty_prompt:
        if not item.get("prompt_token_ids"):
            return None
    else:
        present = [k for k in TOKEN_FIELDS if k in item]
        if not present:
            return None
        missing = [k for k in REQUIRED if k not in item]
        if missing:
            raise ValueError(f"Token metadata must include all required fields; missing: {', '.join(missing)}")
        if "prompt_token_ids" not in item:
            return None
    out = {k: item[k] for k in REQUIRED}
    if item.get("routed_experts") is not None:
        out["routed_experts"] = item["routed_experts"]
    return out


def _split_reasoning(msg: dict[str, Any], interleaved: bool) -> None:
    """The model server's preprocessing: every block out of ``content``, the first one sent as reasoning."""
    content = msg.get("content")
    if isinstance(content, str):
        blocks = THINK.findall(content)
        msg["content"] = THINK.sub("", content)
        if blocks and interleaved:
            msg["reasoning_content"] = msg["reasoning"] = blocks[0]


def to_messages(items: list[dict[str, Any]], *, gym: GymProfile | None = None, reasoning_parser: bool = True,
                interleaved_reasoning: bool = True, findings: list[str] | None = None) -> list[dict[str, Any]]:
    """Responses items -> the chat ``messages`` Gym sends (converter, then the model server's preprocessing).

    ``findings`` collects what the client itself did to the history that no endpoint can undo (Gym 0.4.0
    dropping an empty assistant turn with its ids), so a continuity failure it causes is not blamed on the
    endpoint.
    """
    gym = gym or gym_profile()
    out: list[dict[str, Any]] = []
    run = {"text": "", "refusal": "", "calls": [], "touched": False, "bundle": None}

    def flush() -> None:
        has_output = run["text"] or run["calls"] or (gym.carries_refusals and run["refusal"])
        if not (has_output or (run["touched"] and not gym.drops_empty_assistant)):
            if run["touched"] and run["bundle"] is not None and findings is not None:
                findings.append(f"Gym {gym.version} drops an assistant turn with empty text and no tool calls, and "
                                "its token ids with it: the next prompt cannot continue that generation, whatever "
                                "the endpoint does (fixed in later Gym versions)")
            if not gym.bundle_outlives_flush:
                run["bundle"] = None
            run["touched"] = False
            return
        msg: dict[str, Any] = {"role": "assistant", "content": run["text"] or None}
        if run["calls"] or gym.always_lists_tool_calls:
            msg["tool_calls"] = list(run["calls"])
        if run["refusal"]:
            msg["refusal"] = run["refusal"]
        if run["bundle"] is not None:
            msg.update(run["bundle"])
        if reasoning_parser:
            _split_reasoning(msg, interleaved_reasoning)
        out.append(msg)
        run.update(text="", refusal="", calls=[], touched=False)
        if not gym.bundle_outlives_flush:
            run["bundle"] = None

    for item in items:
        kind = item.get("type") or ("message" if item.get("role") else None)
        if _is_model_item(item):
            run["touched"] = True
            if kind == "reasoning":
                run["text"] += "".join(f"<think>{s['text']}</think>" for s in item.get("summary") or [] if s["text"])
            elif kind == "function_call":
                run["calls"].append({"id": item["call_id"], "function": {"arguments": item["arguments"],
                                                                       "name": item["name"]}, "type": "function"})
            else:
                content = item.get("content")
                run["text"] += _text_of(content)
                if gym.carries_refusals and isinstance(content, list):
                    run["refusal"] += "".join(p["refusal"] for p in content
                                              if isinstance(p, dict) and isinstance(p.get("refusal"), str))
        else:
            flush()
            if kind == "function_call_output":
                output = item["output"]
                if isinstance(output, list) and gym.converts_list_outputs:
                    output = [{"type": "text", "text": p["text"]} for p in output]
                out.append({"content": output, "role": "tool", "tool_call_id": item["call_id"]})
            else:
                content = item.get("content")
                if isinstance(content, list):
                    content = [{"type": "text", "text": p["text"]} for p in content]
                out.append({"content": content, "role": item["role"]})
        bundle = _bundle_of(item, gym)
        if bundle is not None:
            run["bundle"] = bundle
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
    elif text.startswith("<think>"):
        # cut by max_tokens while thinking: the qwen3 parser returns it all as reasoning and no content
        msg["reasoning"], msg["content"] = text[len("<think>"):].strip("\n"), ""
        return msg
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
