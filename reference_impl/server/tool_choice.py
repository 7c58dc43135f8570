"""Forced tool choice: ``tool_choice: "required"`` or a named function, served the way vLLM serves it.

vLLM does not rely on the tool parser here: it constrains decoding to a JSON schema (a named function's
``parameters``; for ``required``, a non-empty array of ``{"name", "parameters"}`` objects) and turns the
JSON it generated into ``tool_calls``. Pure functions; the engine applies the schema.
"""
from __future__ import annotations

import json
import uuid
from typing import Any

from .protocol import ChatRequest, bad_request

ANY_OBJECT: dict[str, Any] = {"type": "object"}


def named_function(req: ChatRequest) -> str | None:
    choice = req.tool_choice
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if choice.get("type") != "function" or not isinstance(name, str):
            raise bad_request('a named tool_choice is {"type": "function", "function": {"name": ...}}', "tool_choice")
        return name
    return None


def forced_schema(req: ChatRequest) -> dict[str, Any] | None:
    """The JSON schema generation is constrained to, or None when the model chooses freely."""
    if not req.tools or req.tool_choice in (None, "none", "auto"):
        return None
    params = {t.function.name: t.function.parameters or ANY_OBJECT for t in req.tools}
    name = named_function(req)
    if name is not None:
        if name not in params:
            raise bad_request(f"tool_choice names {name!r}, which is not in tools", "tool_choice")
        return params[name]
    schema: dict[str, Any] = {"type": "array", "minItems": 1, "items": {"anyOf": [
        {"type": "object", "properties": {"name": {"type": "string", "enum": [n]}, "parameters": p},
         "required": ["name", "parameters"]} for n, p in params.items()]}}
    if req.parallel_tool_calls is False:
        schema["maxItems"] = 1
    return schema


def forced_calls(content: str | None, req: ChatRequest) -> list[dict[str, Any]] | None:
    """``tool_calls`` from the constrained JSON; None when it does not parse (the turn was cut by max_tokens)."""
    try:
        value = json.loads(content or "")
    except ValueError:
        return None
    name = named_function(req)
    # a named call's arguments are the generated text itself, byte for byte (re-serialising would re-template
    # what the model emitted, P08); "required" arguments come out of the array, so they are serialised
    pairs = [(name, (content or "").strip())] if name is not None else \
        [(item["name"], json.dumps(item["parameters"], ensure_ascii=False)) for item in value] \
        if isinstance(value, list) else []
    return [{"id": f"chatcmpl-tool-{uuid.uuid4().hex[:16]}", "type": "function",
             "function": {"name": n, "arguments": args}} for n, args in pairs]
