"""Rollouts driven the way NeMo Gym's simple agent drives them (HTTP only; one coroutine per rollout).

seed_session → model call → (tool calls executed against the environment → model call)* → verify. Every model
call uses Gym's training body (temperature/top_p as the loop's sampling, log probs and token ids requested)
and carries the previous calls' token bundle on their assistant messages, so the server's on-policy
correction (contract §7) builds each prompt from the ids the model actually sampled. The row's sampling
parameters are stamped into the row (R5) and the row index travels with the rollout (R6).

The client is aiohttp, as in Gym's own agents: httpx's connection pool spends CPU per request that grows with
the number of open connections, and with 64 rollouts in flight it took about half of the trainer's CPU (py-spy),
a core the 2-core machine's vLLM engine needed. ``session()`` makes one without a shared cookie jar: each
rollout carries its own environment session cookie, as Gym's agent does.
"""
from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .sequences import ServedCall


@dataclass
class Rollout:
    row_index: int
    sample: int
    endpoint: str
    calls: list[ServedCall] = field(default_factory=list)
    reward: float = 0.0
    components: dict[str, float] = field(default_factory=dict)
    truncated: bool = False
    spliced_calls: int = 0     # calls whose served prompt differs from the plain template render
    error: str | None = None   # why this rollout cannot be trained on (counted and logged, never silent)
    row: dict = field(default_factory=dict)  # the row as sent, its sampling stamped in (R5; the rollouts dump)


def chat_messages(items: list[dict]) -> list[dict]:
    """A Gym row's Responses ``input`` messages as chat messages (``developer`` is the system role)."""
    out = []
    for m in items:
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        out.append({"role": "system" if m.get("role") == "developer" else m["role"], "content": content or ""})
    return out


def chat_tools(tools: list[dict] | None) -> list[dict] | None:
    """Responses-API function tools (flat) in the chat-completions form, as Gym's model server sends them."""
    return [{"type": "function", "function": {k: v for k, v in t.items() if k != "type"}} for t in tools or []] or None


def _response_object(model: str, items: list[dict]) -> dict:
    """The Responses-API response ``/verify`` receives (the fields Gym's NeMoGymResponse requires)."""
    return {"id": "resp_grpo", "object": "response", "created_at": 0, "model": model, "output": items,
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "status": "completed"}


def session(concurrency: int, timeout: float = 120.0) -> aiohttp.ClientSession:
    """The rollouts' HTTP client: ``concurrency`` connections, no cookie jar (cookies travel per rollout).

    Idle connections are dropped after 2 s, before uvicorn's 5 s keep-alive closes them from its side: reusing
    a connection the server has just closed is a ``ServerDisconnectedError`` (seen between a step's training
    and the next rollouts); ``Agent`` also retries once on that error."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=2.0),
                                 timeout=aiohttp.ClientTimeout(total=timeout), cookie_jar=aiohttp.DummyCookieJar())


class Agent:
    """One model endpoint and one environment; ``render`` (optional) counts calls that needed a splice."""

    def __init__(self, http: aiohttp.ClientSession, model_url: str, env_url: str, *, model: str, max_tokens: int,
                 max_turns: int, temperature: float = 1.0, top_p: float = 1.0, render=None):
        self.http, self.model_url, self.env_url, self.model = http, model_url.rstrip("/"), env_url.rstrip("/"), model
        self.max_tokens, self.max_turns, self.temperature, self.top_p = max_tokens, max_turns, temperature, top_p
        self.render = render

    async def run(self, row: dict, row_index: int, sample: int, seed: int | None = None) -> Rollout:
        out = Rollout(row_index, sample, self.model_url, row=row)
        try:
            await self._run(row, out, seed)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError) as exc:  # one lost rollout, named; the step goes on
            out.error = f"{type(exc).__name__}: {str(exc)[:300]}"
        return out

    async def _run(self, row: dict, out: Rollout, seed: int | None) -> None:
        params = row["responses_create_params"]
        # R5: the sampling the rollout used is stamped into the row it is verified and logged with
        params.update(temperature=self.temperature, top_p=self.top_p, max_output_tokens=self.max_tokens)
        # the environment's session cookie, carried on every later call (Gym's agent does the same)
        _, jar = await self._post(self.env_url + "/seed_session", row)
        cookies = {"Cookie": "; ".join(f"{k}={m.value}" for k, m in jar.items())} if jar else {}
        messages, tools = chat_messages(params["input"]), chat_tools(params.get("tools"))
        items: list[dict] = []
        for turn in range(self.max_turns):
            body = {"model": self.model, "messages": messages, "max_tokens": self.max_tokens,
                    "temperature": self.temperature, "top_p": self.top_p,
                    "logprobs": True, "top_logprobs": 0, "return_tokens_as_token_ids": True}
            if seed is not None:  # per-call seeds: a resumed run samples exactly what the uninterrupted one did
                body["seed"] = seed * 16 + turn
            if tools:
                body.update(tools=tools, tool_choice="auto", parallel_tool_calls=True)
            choice = (await self._post(self.model_url + "/v1/chat/completions", body))[0]["choices"][0]
            msg = choice["message"]
            call = ServedCall(list(msg["prompt_token_ids"]), list(msg["generation_token_ids"]),
                              [float("nan") if x is None else float(x) for x in msg["generation_log_probs"]],
                              choice.get("finish_reason") or "stop")
            if turn and self.render is not None and call.prompt_ids != self.render(messages, tools):
                out.spliced_calls += 1
            out.calls.append(call)
            out.truncated = call.finish_reason == "length"
            tool_calls = msg.get("tool_calls") or []
            messages.append({"role": "assistant", "content": msg.get("content") or "", "tool_calls": tool_calls or None,
                             "prompt_token_ids": call.prompt_ids, "generation_token_ids": call.generation_ids,
                             "generation_log_probs": [x if math.isfinite(x) else 0.0 for x in call.logprobs]})
            if msg.get("content"):
                items.append({"id": f"msg_{turn}", "type": "message", "role": "assistant", "status": "completed",
                              "content": [{"type": "output_text", "text": msg["content"], "annotations": []}]})
            if not tool_calls or out.truncated:
                break
            for tc in tool_calls:
                fn = tc["function"]
                items.append({"type": "function_call", "call_id": tc["id"], "name": fn["name"],
                              "arguments": fn["arguments"], "id": tc["id"], "status": "completed"})
                try:
                    args = json.loads(fn["arguments"])
                    result = await self._tool(f"{self.env_url}/{fn['name']}", args, cookies)
                except json.JSONDecodeError as exc:  # the model's own malformed call: its output, as Gym does
                    result = json.dumps({"error": f"Invalid tool call arguments: {exc!r}"})
                items.append({"type": "function_call_output", "call_id": tc["id"], "output": result})
                messages.append({"role": "tool", "tool_call_id": tc["id"], "content": result})
        verdict, _ = await self._post(self.env_url + "/verify", {**row, "response": _response_object(self.model, items)},
                                      cookies=cookies)
        out.reward = float(verdict["reward"])
        out.components = {k: float(v) for k, v in (verdict.get("reward_components") or {}).items()}
        if not math.isfinite(out.reward):
            raise ValueError(f"the verifier returned reward {verdict['reward']!r}")

    async def _tool(self, url: str, args: dict, cookies: dict) -> str:
        """A tool route's raw body, whatever its status (Gym hands the model the environment's answer as is)."""
        return (await self._request(url, args, cookies))[1]

    async def _post(self, url: str, body: dict, cookies: dict | None = None):
        """(JSON body, cookies set) of a POST; an HTTP error status is a ValueError naming it."""
        status, text, jar = await self._request(url, body, cookies or {})
        if status >= 400:
            raise ValueError(f"POST {url}: HTTP {status} {text[:240]}")
        return json.loads(text), jar

    async def _request(self, url: str, body: dict, headers: dict):
        """(status, text, cookies); retried once when a kept-alive connection was closed before any answer."""
        try:
            async with self.http.post(url, json=body, headers=headers) as r:
                return r.status, await r.text(), r.cookies
        except aiohttp.ServerDisconnectedError:
            async with self.http.post(url, json=body, headers=headers) as r:
                return r.status, await r.text(), r.cookies


async def run_rollouts(agents: list[Agent], jobs: list[tuple[dict, int, int, int | None]], *,
                       concurrency: int = 64) -> list[Rollout]:
    """Every (row, row_index, sample, seed) job, rows pinned to an endpoint by row index (session affinity: one
    row's group shares a server's prefix cache), at most ``concurrency`` in flight."""
    gate = asyncio.Semaphore(concurrency)

    async def one(row, idx, sample, seed):
        async with gate:
            return await agents[idx % len(agents)].run(json.loads(json.dumps(row)), idx, sample, seed)

    return list(await asyncio.gather(*(one(*job) for job in jobs)))
