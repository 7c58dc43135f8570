"""Rollouts as ``/verify`` receives them: chat turns (``fixtures.tasks.ideal_turns``) in the Responses-API form.

The shape follows what Gym's simple agent hands to ``/verify``: one ``response`` whose ``output`` holds every
item of the episode -- assistant ``message`` items with ``output_text`` parts, ``function_call`` items, and
the ``function_call_output`` items the agent added after calling the environment.
"""
from __future__ import annotations

from typing import Any

from fixtures.tasks import ideal_turns


def message(text: str, *, index: int = 0) -> dict[str, Any]:
    return {"id": f"msg_{index}", "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def to_output(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat-completions turns after the prompt -> Responses output items, in order."""
    items: list[dict[str, Any]] = []
    for i, turn in enumerate(turns):
        if turn["role"] == "tool":
            items.append({"type": "function_call_output", "call_id": turn["tool_call_id"], "output": turn["content"]})
            continue
        if turn.get("content"):
            items.append(message(turn["content"], index=i))
        for call in turn.get("tool_calls") or []:
            items.append({"id": f"fc_{call['id']}", "type": "function_call", "call_id": call["id"], "status": "completed",
                          "name": call["function"]["name"], "arguments": call["function"]["arguments"]})
    return items


def response(output: list[dict[str, Any]]) -> dict[str, Any]:
    """A complete Responses-API response object around ``output`` (the fields Gym's model requires)."""
    return {"id": "resp_test", "object": "response", "created_at": 1700000000, "model": "policy", "output": output,
            "parallel_tool_calls": False, "tool_choice": "auto", "tools": [], "status": "completed"}


def ideal_output(row: dict[str, Any]) -> list[dict[str, Any]]:
    return to_output(ideal_turns(row))


def verify_body(row: dict[str, Any], output: list[dict[str, Any]]) -> dict[str, Any]:
    """What Gym's simple agent posts to ``/verify``: the row plus ``response``."""
    return {**row, "response": response(output)}
