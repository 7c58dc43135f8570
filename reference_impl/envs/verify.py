"""Scoring a finished rollout: pure functions over the Responses-API ``response`` that ``/verify`` receives.

Kept apart from the HTTP layer so the same rules serve the route, the unit tests and any offline re-scoring
of saved rollouts without a server. The ``response`` is what Gym's simple agent accumulates over a rollout:
its ``output`` lists every item the episode produced, in order -- ``message`` items (assistant text in
``output_text`` parts), ``function_call`` items, the ``function_call_output`` items the agent added, and
``reasoning`` items. Only the items the rules read are checked; any other item type passes untouched, as
Gym adds new ones between versions.

The reward has two components so a multi-objective trainer can tell "cannot follow the format" from "follows
it but is wrong" (Gym's ``reward_components`` convention; ``reward`` is their sum for single-reward trainers):

- ``format`` 0.2: the final assistant text holds exactly one well-formed ``<answer>N</answer>``;
- ``answer`` 0.8: the format holds and ``N`` equals the row's ``expected_answer``.
"""
from __future__ import annotations

from typing import Any

from .errors import invalid, require_object, require_string

FORMAT_REWARD = 0.2
ANSWER_REWARD = 0.8
OPEN, CLOSE = "<answer>", "</answer>"


def output_items(response: Any) -> list[dict[str, Any]]:
    """``response["output"]``, checked where the rules read it; a bad field raises a 422 naming its path."""
    require_object(response, "response")
    if "output" not in response:
        raise invalid("response.output", "missing; a Responses-API response carries its items in `output`")
    items = response["output"]
    if not isinstance(items, list):
        raise invalid("response.output", "must be an array of output items")
    for i, item in enumerate(items):
        where = f"response.output[{i}]"
        require_object(item, where)
        kind = require_string(item.get("type"), f"{where}.type")
        if kind == "message":
            _check_message(item, where)
        elif kind == "function_call":
            require_string(item.get("name"), f"{where}.name")
            require_string(item.get("arguments"), f"{where}.arguments")
    return items


def _check_message(item: dict[str, Any], where: str) -> None:
    if "role" in item:
        require_string(item["role"], f"{where}.role")
    content = item.get("content")
    if isinstance(content, str):  # the input-message shorthand; output messages use parts, both are read
        return
    if not isinstance(content, list):
        raise invalid(f"{where}.content", "must be an array of content parts")
    for j, part in enumerate(content):
        require_object(part, f"{where}.content[{j}]")
        kind = require_string(part.get("type"), f"{where}.content[{j}].type")
        if kind == "output_text":
            require_string(part.get("text"), f"{where}.content[{j}].text")


def message_text(item: dict[str, Any]) -> str:
    """The text of one ``message`` item: its ``output_text`` parts joined (a refusal part is not text)."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "".join(part["text"] for part in content if part.get("type") == "output_text")


def final_text(items: list[dict[str, Any]]) -> str | None:
    """The text of the last assistant ``message`` item, or ``None`` when the episode produced no message.

    Reasoning items are not messages, so a reasoning parser's split keeps the thinking out of the answer.
    """
    for item in reversed(items):
        if item.get("type") == "message" and item.get("role", "assistant") == "assistant":
            return message_text(item)
    return None


def function_calls(items: list[dict[str, Any]], name: str | None = None) -> list[dict[str, Any]]:
    """The ``function_call`` items, optionally only those calling ``name``."""
    return [item for item in items
            if item.get("type") == "function_call" and (name is None or item.get("name") == name)]


def parse_answer(text: str | None) -> str | None:
    """``N`` from exactly one well-formed ``<answer>N</answer>`` in ``text``; ``None`` when there is not one.

    Well-formed: one opening and one closing tag, in that order, around a non-empty single-line value
    without angle brackets. Whitespace around the value is not part of it. Two tags are not "the" answer,
    even when they agree: the format is part of what the policy learns.
    """
    if text is None or text.count(OPEN) != 1 or text.count(CLOSE) != 1:
        return None
    start, end = text.index(OPEN) + len(OPEN), text.index(CLOSE)
    if end < start:
        return None
    value = text[start:end].strip()
    if not value or any(c in value for c in "<>\n\r"):
        return None
    return value


def reward_components(text: str | None, expected: str) -> dict[str, float]:
    """The two components for a final text against the expected answer (compared as text, stripped)."""
    answer = parse_answer(text)
    return {"format": FORMAT_REWARD if answer is not None else 0.0,
            "answer": ANSWER_REWARD if answer is not None and answer == expected.strip() else 0.0}


def score(items: list[dict[str, Any]], expected: str) -> dict[str, Any]:
    """The fields ``/verify`` adds for an answer task.

    ``reward`` (the components' sum), ``reward_components``, each component again at the top level (Gym's
    aggregate metrics read top-level numbers only) and the ``extracted_answer`` (``None`` when the format
    failed)."""
    text = final_text(items)
    components = reward_components(text, expected)
    return {"reward": sum(components.values()), "reward_components": components, **components,
            "extracted_answer": parse_answer(text)}
