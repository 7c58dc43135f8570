"""What every check receives: the target, the sync bridge to the async client, the reference tokenizer, caches."""
from __future__ import annotations

import functools
import inspect

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, TypeVar

from ..client import ChatCall, GymClient, Rollout, Runner, Step
from ..core import CheckFailure, CheckSkipped, ClientFinding, EndpointError, Evidence, describe_divergence, prefix_difference, \
    token_diff
from ._reference import Reference, model_vocab_size

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
    max_response_bytes: int = 16 * 2**20
    deadline: float | None = None     # time.monotonic() after which nothing is sent (the run's bound)


def client_for(target: Target, **overrides: Any) -> GymClient:
    """A Gym-faithful client for ``target`` as its settings say (``overrides``: e.g. the load tier's concurrency)."""
    settings: dict[str, Any] = dict(model=target.model, api_key=target.api_key, timeout=target.timeout,
                                    retry_budget_s=target.timeout, chat_template_kwargs=target.chat_template_kwargs,
                                    gym_version=target.gym_version, reasoning_parser=target.reasoning_parser,
                                    max_response_bytes=target.max_response_bytes, deadline=target.deadline)
    return GymClient(target.endpoint, **{**settings, **overrides})


class Context:
    """Shared by all checks of one endpoint in one session (one client, one loop, one tokenizer load)."""

    def __init__(self, target: Target, runner: Runner, *, reference: Reference | None = None,
                 client: GymClient | None = None) -> None:
        self.target, self.runner = target, runner
        self.client = client or client_for(target)
        self._reference = reference
        self._cache: dict[str, Any] = {}
        self.hypothesis_seed: int | None = None  # --hypothesis-seed, so CI runs can vary it

    async def aclose(self) -> None:
        """End of the session: close the HTTP client and release the reference tokenizer's gc freeze."""
        await self.client.aclose()
        if self._reference is not None:
            self._reference.release()

    # -- plumbing ---------------------------------------------------------------------------------------
    def run(self, coro: Awaitable[T]) -> T:
        return self.runner.run(coro)

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

    @functools.cached_property
    def model_vocab_size(self) -> int | None:
        """The model's embedding rows, from config.json beside the weights (--rescore-model) or the tokenizer."""
        return model_vocab_size(self.target.rescore_model, self.target.tokenizer)

    def out_of_vocabulary(self, call: ChatCall | None = None, diff: Any = None) -> str | None:
        """Why a comparison with the reference tokenizer cannot hold, when the served ids of ``call`` (or the
        sides of ``diff``) include one the model cannot have produced: negative, or past both the tokenizer's
        ids and the model's vocab_size (ids in between are padding rows a model can sample: E25). None otherwise,
        and None until the tokenizer is loaded (a check that never needed it does not load it to fail)."""
        ref = self._reference
        if ref is None:
            return None
        vocab = self.model_vocab_size
        limit = max(ref.size, vocab or 0)
        fields: list[tuple[str, list[int]]] = []
        if call is not None and call.bundle is not None:
            fields += [("prompt_token_ids", call.bundle.prompt_token_ids),
                       ("generation_token_ids", call.bundle.generation_token_ids)]
        if diff is not None:
            fields += [(diff.actual_label, diff.actual), (diff.expected_label, diff.expected)]
        for name, ids in fields:
            bad = ref.outside(ids, limit)
            if bad:
                pos, token_id = bad[0]
                model = (f", the model's vocab_size {vocab}" if vocab else
                         " and no config.json with the model's vocab_size")
                return (f"ids out of the tokenizer's vocabulary: {name} holds {len(bad)} of {len(ids)} ids outside "
                        f"0..{limit - 1} (the first: [{pos}] = {token_id}; --tokenizer {ref.name} has {ref.size} "
                        f"ids{model}): the endpoint serves another model's token ids, or --tokenizer is not the "
                        f"served model's")
        return None

    def rollout(self, **params: Any) -> Rollout:
        params.setdefault("chat_template_kwargs", self.target.chat_template_kwargs or None)
        return Rollout(self.client, **params)

    async def probe(self, key: str, make: Callable[[], T | Awaitable[T]]) -> T:
        """Memoise an expensive shared probe (the first-turn call, a loaded rescoring model) for the session;
        ``make`` may be a plain function or a coroutine function. Errors are re-raised to every asker."""
        if key not in self._cache:
            try:
                value = make()
                self._cache[key] = ("ok", await value if inspect.isawaitable(value) else value)
            except Exception as exc:  # noqa: BLE001 - every check depending on it should report the same cause
                self._cache[key] = ("err", exc)
        kind, value = self._cache[key]
        if kind == "err":
            raise value
        return value

    def evidence(self, verdict: str, call: ChatCall | None = None, **kw: Any) -> Evidence:
        ev = Evidence(verdict=verdict, endpoint=self.client.api, **kw)
        if call is not None:
            ev.request = ev.request if ev.request is not None else call.request
            ev.response = ev.response if ev.response is not None else call.response
            ev.curl = ev.curl or self.client.curl(call.url, call.request)
        return ev

    def bind(self, check_id: str) -> "CheckContext":
        return CheckContext(self, check_id)


class CheckContext:
    """What one check receives: the session's :class:`Context` with the check's id bound, so failures,
    evidence and continuity verdicts know which catalogue entry (and tier) they belong to."""

    def __init__(self, session: Context, check_id: str) -> None:
        self.session, self.check_id = session, check_id

    def __getattr__(self, name: str) -> Any:  # client, reference, target, rollout, decode, ... are the session's
        return getattr(self.session, name)

    # -- shared probes ------------------------------------------------------------------------------------
    async def first_turn(self) -> ChatCall:
        """The standard first call every single-call check inspects (one request per session)."""
        return await self.session.probe("first_turn", lambda: self.client.chat(
            [{"role": "user", "content": "Count to 5, then stop."}], max_tokens=24))

    def bundle(self, call: ChatCall):
        """The call's token bundle, or a failure of this check naming why Gym could not extract one."""
        if call.bundle is None:
            why = str(call.metadata_error) if call.metadata_error else "no token metadata"
            raise self.fail(f"no usable token bundle: {why}", call)
        return call.bundle

    # -- verdicts -----------------------------------------------------------------------------------------
    def fail(self, verdict: str, call: ChatCall | None = None, *, tier: str = "", **evidence: Any) -> CheckFailure:
        """This check's failure; ``tier`` overrides the catalogue's where the tier depends on what was served
        (E1, E9); ``evidence`` are :class:`Evidence` fields (request, response, token_diff, metrics, notes).
        Served ids the tokenizer cannot have produced are named first: every comparison with it is moot then."""
        cause = self.session.out_of_vocabulary(call, evidence.get("token_diff"))
        if cause:
            verdict = f"{cause}; {verdict}"
        return CheckFailure(self.check_id, verdict, self.session.evidence(verdict, call, **evidence), tier=tier)

    def endpoint_failure(self, exc: EndpointError) -> CheckFailure:
        """An endpoint that cannot be driven fails the check with the cause, never a harness traceback."""
        verdict = f"endpoint error: {exc}"
        ev = Evidence(verdict=verdict, endpoint=self.client.api, request=exc.request, response=exc.response,
                      curl=self.client.curl(exc.url, exc.request) if exc.url and exc.request is not None else None)
        return CheckFailure(self.check_id, verdict, ev)

    def assert_continuity(self, steps: list[Step], *, label: str = "", tier: str = "") -> None:
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
                raise ClientFinding(self.check_id, verdict, self.session.evidence(verdict, after.call, notes=[
                    f"call {k + 2} of {len(steps)}", f"gym_version {self.client.gym.version}"]))
            decode = self.reference.decode if self.has_reference else None
            what = "the previous generation" if pos >= len(before.bundle.prompt_token_ids) else "the previous prompt"
            verdict = describe_divergence(expected, actual, pos, decode=decode, what=what,
                                          subject=f"turn {k + 2} prompt")
            if label:
                verdict = f"{label}: {verdict}"
            diff = token_diff(expected, actual, decode=decode, prefix=True,
                              expected_label=f"P_{k + 1} + G_{k + 1}", actual_label=f"P_{k + 2}")
            raise self.fail(verdict, after.call, tier=tier, token_diff=diff, notes=[f"call {k + 2} of {len(steps)}"])
