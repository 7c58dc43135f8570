"""Multi-call rollouts driven the way a Gym agent drives them, and the sync bridge the checks use.

A :class:`Rollout` keeps Responses items (inputs and every call's outputs, token fields included), turns
them into chat messages for each call, and records every call so continuity can be checked for each
pair of consecutive calls. ``replay`` supplies a previous generation whose ids the harness chose
(docs/drift-cases.md §3: "constructed or teacher-forced"), after learning the served prompt from a 1-token call.
"""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any, Awaitable, TypeVar

from ..core import ContextOverflow, EndpointError
from ._extract import Bundle
from ._http import ChatCall, GymClient
from ._items import to_messages, to_output_items

T = TypeVar("T")


@dataclass
class Step:
    """One model call of a rollout: what was sent, what the endpoint served, what the model (or harness) produced."""

    call: ChatCall
    bundle: Bundle
    # what the client (Gym itself) did to the history sent for this call that no endpoint can undo
    client_findings: list[str] = field(default_factory=list)


class Rollout:
    def __init__(self, client: GymClient, *, tools: list[dict] | None = None, interleaved_reasoning: bool = True,
                 **params: Any) -> None:
        self.client, self.tools, self.params = client, tools, params
        self.interleaved_reasoning = interleaved_reasoning
        self.items: list[dict[str, Any]] = []
        self.steps: list[Step] = []
        self._findings: list[str] = []  # from the last messages() conversion

    def system(self, text: str) -> "Rollout":
        self.items.append({"role": "system", "content": text})
        return self

    def user(self, text: str) -> "Rollout":
        self.items.append({"role": "user", "content": text})
        return self

    def tool_output(self, call_id: str, output: str) -> "Rollout":
        self.items.append({"type": "function_call_output", "call_id": call_id, "output": output})
        return self

    def messages(self) -> list[dict[str, Any]]:
        """The chat messages the client's Gym version sends for the items so far."""
        self._findings = []
        return to_messages(self.items, gym=self.client.gym, reasoning_parser=self.client.reasoning_parser,
                           interleaved_reasoning=self.interleaved_reasoning, findings=self._findings)

    def output_items(self, message: dict[str, Any], bundle: Bundle) -> list[dict[str, Any]]:
        return to_output_items(message, bundle, gym=self.client.gym, reasoning_parser=self.client.reasoning_parser)

    async def _call(self, **params: Any) -> ChatCall:
        call = await self.client.chat(self.messages(), tools=self.tools, **{**self.params, **params})
        if call.incomplete:
            raise ContextOverflow(f"call {len(self.steps) + 1} hit the context limit (HTTP 400); no tokens",
                                request=call.request, response=call.response, status=400, url=call.url)
        return call

    async def generate(self, **params: Any) -> Step:
        """A sampled call; its message and bundle become output items for the next call."""
        call = await self._call(**params)
        if call.bundle is None:
            raise call.metadata_error or EndpointError("no token metadata in the response")
        step = Step(call, call.bundle, client_findings=list(self._findings))
        self.steps.append(step)
        self.items.extend(self.output_items(call.message, call.bundle))
        return step

    async def replay(self, message: dict[str, Any], generation_ids: list[int],
                     log_probs: list[float] | None = None) -> Step:
        """Supply this call's generation: the served prompt comes from the endpoint, the ids from the harness.

        Log probs of a constructed turn are placeholders (0.0): the endpoint must not use them, and
        nothing downstream grades them.
        """
        call = await self._call(max_tokens=1)
        if call.bundle is None:
            raise call.metadata_error or EndpointError("no token metadata in the response")
        bundle = Bundle(list(call.bundle.prompt_token_ids), list(generation_ids),
                        list(log_probs) if log_probs is not None else [0.0] * len(generation_ids), "constructed")
        step = Step(call, bundle, client_findings=list(self._findings))  # bundle.source "constructed"
        self.steps.append(step)
        self.items.extend(self.output_items(message, bundle))
        return step


class Runner:
    """Runs coroutines on one event loop in a background thread: sync pytest checks over an async client.

    One loop for the whole session keeps one connection pool (and one ``GymClient``) alive across tests.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="gym-conformance-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()
