"""The task registry: name -> what a session keeps, how a rollout is scored, which tool routes exist.

Everything here is plain Python over decoded JSON, so each task can be tested without a server and the HTTP
layer (``app``) stays one generic piece for every task. The rows themselves come from ``fixtures.tasks``,
the one source of truth shared with the warm-start fixture; these functions read only the row fields that
module writes (``expected_answer``, and for ``lookup`` the ``table``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from fixtures.tasks import LOOKUP_TOOL, tool_output

from .errors import invalid, require_object, require_string
from .verify import function_calls, output_items, score

State = dict[str, Any]
# (the tool call's parsed arguments, the session's state) -> the exact body text the route answers
ToolHandler = Callable[[dict[str, Any], State], str]


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    seed: Callable[[dict[str, Any]], State]  # row -> the session's initial state
    # (row, checked response output items, the session's state or None when unseeded) -> fields /verify adds
    verify: Callable[[dict[str, Any], list[dict[str, Any]], State | None], dict[str, Any]]
    tools: Mapping[str, ToolHandler] = field(default_factory=dict)  # route name (= tool name) -> handler
    tool_specs: tuple[dict[str, Any], ...] = ()  # the Responses-API tools the rows offer


def check_row(body: dict[str, Any]) -> dict[str, Any]:
    """A row as ``/seed_session`` and ``/verify`` receive it: it must carry ``responses_create_params``."""
    if "responses_create_params" not in body:
        raise invalid("responses_create_params", "missing; send the whole dataset row (its Responses-API "
                                                 "request is `responses_create_params`)")
    require_object(body["responses_create_params"], "responses_create_params")
    return body


def verify_request(task: Task, body: dict[str, Any], state: State | None) -> dict[str, Any]:
    """Check a ``/verify`` body (the row plus ``response``) and return the fields the answer adds to it."""
    check_row(body)
    if "response" not in body:
        raise invalid("response", "missing; /verify takes the row plus `response`, the rollout's "
                                  "Responses-API response object")
    return task.verify(body, output_items(body["response"]), state)


def expected_answer(row: dict[str, Any]) -> str:
    if "expected_answer" not in row:
        raise invalid("expected_answer", "missing; it is the answer the rollout is scored against")
    value = row["expected_answer"]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return require_string(value, "expected_answer")


# --- arith: one turn, no state -------------------------------------------------------------------------

def _arith_verify(row: dict[str, Any], items: list[dict[str, Any]], state: State | None) -> dict[str, Any]:
    return score(items, expected_answer(row))


ARITH = Task(name="arith", description="one-turn single-digit addition, answered as <answer>N</answer>",
             seed=lambda row: {}, verify=_arith_verify)


# --- lookup: a per-row table held by the session, read through the lookup tool ---------------------------

def _lookup_seed(row: dict[str, Any]) -> State:
    if "table" not in row:
        raise invalid("table", "missing; a lookup row carries the table its tool answers from")
    table = require_object(row["table"], "table")
    for key, value in table.items():
        require_string(value, f"table.{key}")
    return {"table": dict(table), "tool_calls": 0}


def _lookup_tool(arguments: dict[str, Any], state: State) -> str:
    if "key" not in arguments:
        raise invalid("key", 'missing; call lookup with {"key": "<name>"}')
    key = require_string(arguments["key"], "key")
    state["tool_calls"] += 1
    return tool_output(state["table"].get(key))


def _lookup_verify(row: dict[str, Any], items: list[dict[str, Any]], state: State | None) -> dict[str, Any]:
    """The answer is scored like arith's; whether the tool was used is reported beside the reward, not in it:
    ``tool_calls`` counts the response's ``lookup`` calls, ``session_tool_calls`` the calls this server
    answered for the session (``None`` when ``/verify`` came without a seeded session's cookie)."""
    fields = score(items, expected_answer(row))
    fields["tool_calls"] = len(function_calls(items, "lookup"))
    fields["session_tool_calls"] = None if state is None else state["tool_calls"]
    return fields


LOOKUP = Task(name="lookup", description="look a key up with the lookup tool, answer <answer>V</answer>",
              seed=_lookup_seed, verify=_lookup_verify, tools={"lookup": _lookup_tool},
              tool_specs=(LOOKUP_TOOL,))

TASKS: dict[str, Task] = {task.name: task for task in (ARITH, LOOKUP)}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]
