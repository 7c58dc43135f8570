"""Drive an endpoint through the real NeMo Gym model server, the way a Gym agent does, and count what breaks.

``gym_proxy`` starts Gym's own ``vllm_model`` app (training mode, ``return_token_id_information: true``) from a
side environment in front of an endpoint; :func:`drive` runs four-call rollouts against it over HTTP, one
Gym session (cookie) per rollout, items carried back unchanged, a forced tool call on the second call and
user turns in between; :func:`judge` applies Gym's own contiguity rule to every rollout and separates
endpoint-caused breaks from those the client's Gym version causes itself (0.4.0 dropping an empty turn).
Used by ``test_real_gym.py`` (CI) and ``benchmarks/bench_real_gym_drive.py`` (stock vLLM beside ours).
"""
from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from conformance._process import ServerProcess, free_port
from conformance.client import gym_profile, to_messages

from ._bridge import BRIDGE, GymBridge, gym_python

TOOL = {"type": "function", "name": "lookup", "description": "Look a key up.", "strict": False,
        # an enum keeps the forced call short, so the untrained model finishes it within max_output_tokens
        "parameters": {"type": "object", "properties": {"key": {"type": "string", "enum": ["k1", "k2", "k3"]}},
                       "required": ["key"]}}


def gym_proxy(version: str, endpoint: str, *, model: str = "tiny", reasoning_parser: bool = True,
              log_dir=None, transport_log=None) -> ServerProcess:
    """Gym's ``vllm_model`` server in training mode in front of ``endpoint`` (a base URL without ``/v1``)."""
    config = {"base_url": endpoint.rstrip("/") + "/v1", "model": model, "return_token_id_information": True,
              "uses_reasoning_parser": reasoning_parser}
    if gym_profile(version).supports_inline_ids:
        config["request_prompt_and_generation_token_ids"] = True
    port = free_port()
    log = None if log_dir is None else log_dir / f"gym-{version}-proxy-{port}.log"
    # Gym 0.7.0's own transport log (every upstream request and error body): the evidence when a call fails
    env = {"NEMO_GYM_VLLM_TRANSPORT_LOG": str(transport_log)} if transport_log else None
    return ServerProcess([str(gym_python(version)), str(BRIDGE), "proxy", "--port", str(port),
                          "--config", json.dumps(config)], port, timeout=120, log_path=log, env=env).start()


@dataclass
class Outcome:
    rollouts: int = 0
    errors: Counter = field(default_factory=Counter)      # first line of each failure -> count
    endpoint_breaks: list[dict] = field(default_factory=list)
    client_breaks: list[dict] = field(default_factory=list)
    calls: int = 0
    tool_calls: int = 0
    reasoning_items: int = 0  # calls whose reply Gym split into a reasoning item (think blocks, reasoning field)

    def summary(self) -> str:
        return (f"{self.rollouts} rollouts, {self.calls} calls ({self.tool_calls} tool calls, {self.reasoning_items} "
                f"with reasoning items), errors {sum(self.errors.values())}, endpoint-caused contiguity violations "
                f"{len(self.endpoint_breaks)}, client-caused {len(self.client_breaks)}")


async def _rollout(http: httpx.AsyncClient, url: str, index: int, max_tokens: int) -> list[dict[str, Any]]:
    """One four-call rollout: U -> gen -> U -> forced tool call -> tool output -> gen -> U -> gen.

    The second call asks for a tool call (``tool_choice: "required"``) with thinking off for that row, through
    Gym's per-row ``metadata.chat_template_kwargs``: constrained decoding starts once reasoning has ended, and
    an untrained model seldom ends it by itself."""
    items: list[dict[str, Any]] = [{"role": "user", "content": f"Question {index}: look up key k{index}."}]
    outputs: list[dict[str, Any]] = []
    for call in range(4):
        body = {"input": items, "tools": [TOOL], "temperature": 1.0, "top_p": 1.0, "max_output_tokens": max_tokens,
                "tool_choice": "auto", "parallel_tool_calls": False}
        if call == 1:
            body.update(tool_choice="required", max_output_tokens=max(max_tokens, 48),
                        metadata={"chat_template_kwargs": json.dumps({"enable_thinking": False})})
        resp = await http.post(url + "/v1/responses", json=body)
        if resp.status_code != 200:
            raise RuntimeError(f"call {call + 1}: HTTP {resp.status_code}: {resp.text[:300]}")
        output = resp.json()["output"]
        outputs += output
        items += output
        calls = [i for i in output if i.get("type") == "function_call"]
        for c in calls:
            out = {"type": "function_call_output", "call_id": c["call_id"], "output": json.dumps({"value": index})}
            items.append(out)
            outputs.append(out)
        if not calls:
            user = {"role": "user", "content": "Go on."}
            items.append(user)
            outputs.append(user)
    return outputs


async def drive(url: str, rollouts: int, *, concurrency: int = 32, max_tokens: int = 24) -> list[Any]:
    """Run ``rollouts`` rollouts through the Gym server at ``url``; each result is its items or the exception."""
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int):
        async with sem:  # a fresh client per rollout: its own Gym session cookie, as one agent run has
            async with httpx.AsyncClient(timeout=300) as http:
                try:
                    return await _rollout(http, url, i, max_tokens)
                except Exception as exc:  # noqa: BLE001 - counted and reported, never hidden
                    return exc
    return await asyncio.gather(*(one(i) for i in range(rollouts)))


def _first_break(items: list[dict[str, Any]]) -> tuple[int, int | None] | None:
    """Gym's contiguity rule, located: (index of the first item whose prompt does not extend everything seen,
    index of the carrier before it) or None when contiguous."""
    seen: list[int] = []
    previous = None
    for i, item in enumerate(items):
        if item.get("generation_token_ids") is None:
            continue
        prompt = item.get("prompt_token_ids") or []
        if prompt[:len(seen)] != seen:
            return i, previous
        seen, previous = list(prompt) + list(item["generation_token_ids"]), i
    return None


def _dropped_by_client(items: list[dict[str, Any]], carrier: int | None, version: str) -> bool:
    """Did this Gym version drop the turn that ``carrier`` ends (empty text, no tool calls) from the next request?"""
    if carrier is None or not gym_profile(version).drops_empty_assistant:
        return False
    run = [carrier]
    while run[0] > 0 and items[run[0] - 1].get("type") in ("reasoning", "message", "function_call") and \
            items[run[0] - 1].get("role", "assistant") == "assistant" and \
            items[run[0] - 1].get("generation_token_ids") is None:
        run.insert(0, run[0] - 1)
    findings: list[str] = []
    to_messages([items[i] for i in run] + [{"role": "user", "content": "next"}], gym=gym_profile(version),
                findings=findings)
    return bool(findings)


def judge(results: list[Any], version: str, judge_bridge: GymBridge) -> Outcome:
    """Gym's contiguity rule on each rollout; a break is the client's when the turn right before it is one its
    Gym version dropped from the request (0.4.0, an empty assistant turn), the endpoint's otherwise."""
    outcome = Outcome(rollouts=len(results))
    for i, result in enumerate(results):
        if isinstance(result, Exception):
            outcome.errors[f"{type(result).__name__}: {result}".splitlines()[0][:200]] += 1
            continue
        model_items = [it for it in result if it.get("generation_token_ids") is not None]
        outcome.calls += len(model_items)
        outcome.tool_calls += sum(it.get("type") == "function_call" for it in result)
        outcome.reasoning_items += sum(it.get("type") == "reasoning" for it in result)
        ok, why = judge_bridge.contiguous(result)
        if ok:
            continue
        where = _first_break(result)
        client = where is not None and _dropped_by_client(result, where[1], version)
        (outcome.client_breaks if client else outcome.endpoint_breaks).append(
            {"rollout": i, "why": why, "at_item": None if where is None else where[0], "items": result})
    return outcome
