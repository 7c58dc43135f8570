"""What every check receives: the target, the sync bridge to the async client, the reference tokenizer, caches."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, TypeVar

from ..client import ChatCall, GymClient, Rollout, Runner, Step
from ..core import CheckFailure, CheckSkipped, ClientFinding, EndpointError, Evidence, describe_divergence, prefix_difference, \
    token_diff
from ._reference import Reference

T = TypeVar("T")


@dataclass
class Target:
    endpoint: str
    model: str | None = None
    api_key: str = "dummy_key"
    tokenizer: str | None = None
    strict: bool = False
    timeout: float = 60.0
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    rescore_model: str | None = None  # local model with the trainer's weights (M24); None: use /v1/completions
    refit_url: str | None = None      # R8: POST {"path": rescore_model} here makes the endpoint load those weights
    gym_version: str | None = None    # which NeMo Gym the client reproduces (None: the newest verified)
    reasoning_parser: bool = True     # Gym's uses_reasoning_parser


class Context:
    """Shared by all checks of one endpoint in one session (one client, one loop, one tokenizer load)."""

    def __init__(self, target: Target, runner: Runner, *, reference: Reference | None = None,
                 client: GymClient | None = None) -> None:
        self.target, self.runner = target, runner
        self.client = client or GymClient(target.endpoint, model=target.model, api_key=target.api_key,
                                          timeout=target.timeout, retry_budget_s=target.timeout,
                                          chat_template_kwargs=target.chat_template_kwargs,
                                          gym_version=target.gym_version, reasoning_parser=target.reasoning_parser)
        self._reference = reference
        self._cache: dict[str, Any] = {}
        self.hypothesis_seed: int | None = None  # --hypothesis-seed, so CI runs can vary it

    # -- plumbing ---------------------------------------------------------------------------------------
    def run(self, coro: Awaitable[T]) -> T:
        return self.runner.run(coro)

    def cached(self, key: str, make: Callable[[], T]) -> T:
        """Memoise expensive shared probes (the first-turn call) across checks; errors are re-raised each time."""
        if key not in self._cache:
            try:
                self._cache[key] = ("ok", make())
            except Exception as exc:  # noqa: BLE001 - every check depending on it should report the same cause
                self._cache[key] = ("err", exc)
        kind, value = self._cache[key]
        if kind == "err":
            raise value
        return value

    @property
    def reference(self) -> Reference:
        if self._reference is None:
            if not self.target.tokenizer:
                raise CheckSkipped("needs --tokenizer (a local Hugging Face tokenizer) for template-level comparison")
            self._reference = Reference(self.target.tokenizer)
        return self._reference

    @property
    def has_reference(self) -> bool:
        return self._reference is not None or bool(self.target.tokenizer)

    def decode(self, ids: list[int]) -> str | None:
        return self.reference.decode(ids) if self.has_reference else None

    def rollout(self, **params: Any) -> Rollout:
        params.setdefault("chat_template_kwargs", self.target.chat_template_kwargs or None)
        return Rollout(self.client, **params)

    # -- shared probes ------------------------------------------------------------------------------------
    def first_turn(self) -> ChatCall:
        """The standard first call every single-call check inspects (one request per session)."""
        async def go() -> ChatCall:
            return await self.client.chat([{"role": "user", "content": "Count to 5, then stop."}], max_tokens=24)
        return self.cached("first_turn", lambda: self.run(go()))

    def bundle(self, check_id: str, call: ChatCall):
        """The call's token bundle, or a failure of ``check_id`` naming why Gym could not extract one."""
        if call.bundle is None:
            why = str(call.metadata_error) if call.metadata_error else "no token metadata"
            raise self.fail(check_id, f"no usable token bundle: {why}", call)
        return call.bundle

    # -- evidence helpers ---------------------------------------------------------------------------------
    def evidence(self, verdict: str, call: ChatCall | None = None, **kw: Any) -> Evidence:
        ev = Evidence(verdict=verdict, endpoint=self.client.api, **kw)
        if call is not None:
            ev.request = ev.request if ev.request is not None else call.request
            ev.response = ev.response if ev.response is not None else call.response
            ev.curl = ev.curl or self.client.curl(call.url, call.request)
        return ev

    def fail(self, check_id: str, verdict: str, call: ChatCall | None = None, **kw: Any) -> CheckFailure:
        tier = kw.pop("tier", "")  # a runtime tier (E1/E9 are MUST or SHOULD depending on what was served)
        return CheckFailure(check_id, verdict, self.evidence(verdict, call, **kw), tier=tier)

    def endpoint_failure(self, check_id: str, exc: EndpointError) -> CheckFailure:
        """An endpoint that cannot be driven fails the check with the cause, never a harness traceback."""
        verdict = f"endpoint error: {exc}"
        ev = Evidence(verdict=verdict, endpoint=self.client.api, request=exc.request, response=exc.response,
                      curl=self.client.curl(exc.url, exc.request) if exc.url and exc.request is not None else None)
        return CheckFailure(check_id, verdict, ev)

    def assert_continuity(self, check_id: str, steps: list[Step], *, label: str = "", tier: str = "") -> None:
        """I1 for every consecutive pair: prompt k+1 starts with P_k + G_k, compared as ids."""
        for k in range(len(steps) - 1):
            before, after = steps[k], steps[k + 1]
            expected = before.bundle.prompt_token_ids + before.bundle.generation_token_ids
            actual = after.bundle.prompt_token_ids
            pos = prefix_difference(expected, actual)
            if pos is None:
                continue
            if after.client_findings:  # the client broke the history; the endpoint cannot be blamed
                verdict = f"client-side finding, not an endpoint failure: {after.client_findings[0]}"
                raise ClientFinding(check_id, verdict, self.evidence(verdict, after.call, notes=[
                    f"call {k + 2} of {len(steps)}", f"gym_version {self.client.gym.version}"]))
            decode = self.reference.decode if self.has_reference else None
            what = "the previous generation" if pos >= len(before.bundle.prompt_token_ids) else "the previous prompt"
            verdict = describe_divergence(expected, actual, pos, decode=decode, what=what,
                                          subject=f"turn {k + 2} prompt")
            if label:
                verdict = f"{label}: {verdict}"
            diff = token_diff(expected, actual, decode=decode, prefix=True,
                              expected_label=f"P_{k + 1} + G_{k + 1}", actual_label=f"P_{k + 2}")
            raise CheckFailure(check_id, verdict, self.evidence(verdict, after.call, token_diff=diff,
                                                               notes=[f"call {k + 2} of {len(steps)}"]), tier=tier)


def compact(obj: Any, limit: int = 4000) -> Any:
    """Keep evidence readable: very long bodies are kept whole only when small."""
    text = json.dumps(obj, default=str)
    return obj if len(text) <= limit else {"truncated_json": text[:limit]}
