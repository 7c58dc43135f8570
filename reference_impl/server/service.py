"""Engine-agnostic request handling: validate, render, splice, clamp, generate, parse, respond.

Each public route takes the request body and returns the JSON response, or raises ``ApiError``; the HTTP
layer (``app.py``) only maps those to responses. A body is the raw JSON bytes (what the HTTP layer passes) or
its decoded value (tests, and subclasses that edit it: ``json_value``); both are validated alike. Contract
references: the training body §3, token metadata §4, errors §5, the correction §7, server behaviours §8.
"""
from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from .correction import build_prompt, check_vocab
from .engines.base import Engine, EngineError, GenerateParams
from .parsing import OutputParser
from .protocol import (ApiError, ChatRequest, CompletionRequest, DetokenizeRequest, ReloadRequest, TokenizeRequest,
                       bad_request, describe_validation_error)
from .rendering import ChatRenderer
from .response import TokenText, chat_response, completion_response
from .sampling import SamplingPolicy, clamp_max_tokens
from .tool_choice import forced_schema

log = logging.getLogger("gym_conformance.server")
M = TypeVar("M", bound=BaseModel)


def decode_json(raw: bytes) -> Any:
    """The JSON value of a request body, or a 400 that says why it is not one."""
    if not raw:
        raise ApiError(400, "the request body is empty; send a JSON object")
    try:  # pydantic's JSON parser first: twice as fast as json.loads on a long rollout's id lists
        return from_json(raw)
    except ValueError:  # what it refuses, json.loads decides, as before (a BOM, UTF-16, a lone surrogate, ...)
        pass
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"malformed JSON in the request body: {exc}") from exc


def json_value(body: Any) -> Any:
    """The body as a JSON value, for a subclass that inspects or edits it before the reference handles it."""
    return decode_json(body) if isinstance(body, (bytes, bytearray)) else body


def validate(model: type[M], body: Any) -> M:
    """The request model for a body (raw JSON bytes or a decoded value), or a 4xx naming the field.

    Bytes are validated by pydantic straight from the JSON: no Python dicts and lists are built only to be
    validated and dropped, which is half the server's own time on a long Gym history (the carried bundles of
    every earlier turn: ``benchmarks/bench_long_history.py``). pydantic's JSON and Python modes accept different
    values only for types these models do not use (dates, enums, UUIDs, bytes), so a body valid one way is valid
    the other, with the same model (``tests/reference_impl/server/test_service_validate.py`` compares the two on
    generated bodies). A body refused that way is decoded and validated as a value, so every refusal (and what
    ``json.loads`` alone accepts, such as a lone surrogate) is exactly what it was for a decoded body.
    """
    if isinstance(body, (bytes, bytearray)):
        try:
            return model.model_validate_json(body)
        except ValidationError:
            body = decode_json(body)
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise describe_validation_error(exc) from exc


@dataclass
class RequestTiming:
    """What one request spent awaiting the engine, for the HTTP layer's ``Server-Timing`` header."""

    engine_seconds: float = 0.0  # summed over every engine call the request made (a mutant may make two)
    # CPU time of the serving thread meanwhile (the engine's output handling, and whatever else the event loop ran):
    # the HTTP layer takes it from the handler's CPU time to report the server's own CPU time
    engine_thread_cpu_seconds: float = 0.0


_TIMING: ContextVar[RequestTiming | None] = ContextVar("gym_conformance_request_timing", default=None)


def start_request_timing() -> RequestTiming:
    """A fresh timing holder for the request running in this context (each request runs in its own task).

    The HTTP layer calls this before the service and reads the holder after it; ``Service.generate`` adds the
    time it awaits the engine. A mutable holder rather than a value set by ``generate``, so engine time spent in
    a task a subclass spawns (``asyncio.wait_for``, ``gather``: copies of this context) is counted too.
    """
    timing = RequestTiming()
    _TIMING.set(timing)
    return timing


def allowed_weight_roots(model_path: str | Path, roots: list[str | Path] | None) -> list[Path]:
    """The directories ``/weights/reload`` may read under: the model's own directory, and the configured roots
    (default: the working directory and the system temp directory, where run folders live)."""
    import tempfile

    chosen = roots if roots else [Path.cwd(), tempfile.gettempdir()]
    return [Path(r).resolve() for r in [model_path, *chosen]]


class Service:
    def __init__(self, tokenizer, engine: Engine, *, served_model_name: str, model_path: str,
                 policy: SamplingPolicy | None = None, reasoning_parser: str | None = None,
                 tool_parser: str | None = None, default_chat_template_kwargs: dict | None = None,
                 weights_roots: list[str | Path] | None = None):
        self.tokenizer, self.engine = tokenizer, engine
        self.weights_roots = allowed_weight_roots(model_path, weights_roots)
        self.served_model_name, self.model_path = served_model_name, model_path
        self.policy = policy or SamplingPolicy()
        self.renderer = ChatRenderer(tokenizer, default_chat_template_kwargs=default_chat_template_kwargs)
        self.parser = OutputParser(tokenizer, reasoning_parser=reasoning_parser, tool_parser=tool_parser,
                                   model_name=served_model_name)
        self.tool_parser = tool_parser
        self.tokens = TokenText(tokenizer)

    def _check_model(self, name: str | None) -> None:
        if name is not None and name != self.served_model_name:
            raise ApiError(404, f"The model `{name}` does not exist; this server serves "
                                f"`{self.served_model_name}`", param="model", type="NotFoundError")

    # -- extension points: the mutant zoo subclasses these and the public routes, nothing private --
    def plan_prompt(self, req: ChatRequest | TokenizeRequest) -> list[int]:
        """The prompt ids served for a chat or ``/tokenize`` body: the on-policy correction (§7)."""
        return build_prompt(self.renderer, req.messages, req.tools, req.chat_template_kwargs,
                            req.required_prefix_token_ids, vocab_size=self.engine.vocab_size,
                            stop_ids=self.engine.stop_ids)

    async def generate(self, prompt_ids: list[int], params: GenerateParams):
        """One engine call; engine errors become OpenAI-style API errors. Its time counts as the request's engine
        time (``Server-Timing``), measured here so subclasses that call ``super()`` keep their own work apart."""
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return await self.engine.generate(prompt_ids, params)
        except EngineError as exc:
            raise ApiError(exc.status, str(exc), param=exc.param,
                           type="invalid_request_error" if exc.status < 500 else "internal_server_error") from exc
        finally:
            timing = _TIMING.get()
            if timing is not None:
                timing.engine_seconds += time.perf_counter() - start
                timing.engine_thread_cpu_seconds += time.thread_time() - cpu

    async def load_weights(self, path: str) -> int:
        """Load a checkpoint the reload route has vetted; the engine pauses generation meanwhile (contract R8)."""
        return await self.engine.reload_weights(path)

    def _visible_ids(self, ids: list[int], finish_reason: str) -> list[int]:
        # The stop token is not part of the text (vLLM's include_stop_str_in_output=False).
        return ids[:-1] if finish_reason == "stop" and ids and ids[-1] in self.engine.stop_ids else ids

    # -- routes ----------------------------------------------------------------------------------
    def models(self) -> dict:
        return {"object": "list", "data": [{
            "id": self.served_model_name, "object": "model", "created": 0, "owned_by": "gym-conformance",
            "root": self.model_path, "parent": None, "max_model_len": self.engine.max_model_len}]}

    async def chat(self, body: Any) -> dict:
        req = validate(ChatRequest, body)
        self._check_model(req.model)
        if req.top_logprobs is not None and not req.logprobs:
            raise bad_request("top_logprobs requires logprobs: true", "top_logprobs")
        if req.logprobs and req.top_logprobs is None and (req.return_tokens_as_token_ids or req.return_token_ids):
            # Contract §8.2 / P14: never answer a token-id request with silently empty logprobs.
            raise bad_request("`top_logprobs` must be set when requesting token information "
                              "(send top_logprobs: 0)", "top_logprobs")
        temperature, top_p = self.policy.resolve(req.temperature, req.top_p)
        vreq = self.parser.prepare(req)  # tool/tool_choice errors surface before any generation
        schema = forced_schema(req)
        prompt = self.plan_prompt(req)
        max_tokens = clamp_max_tokens(req.requested_max_tokens, len(prompt), self.engine.max_model_len)
        params = GenerateParams(max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                                top_logprobs=req.top_logprobs or 0, seed=req.seed, json_schema=schema)
        result = await self.generate(prompt, params)
        with_tools = bool(req.tools and self.tool_parser and req.tool_choice != "none")
        text = self.tokenizer.decode(self._visible_ids(result.token_ids, result.finish_reason),
                                     skip_special_tokens=not with_tools)
        parsed = self.parser.parse(text, result.token_ids, prompt, req, vreq, forced=schema is not None)
        return chat_response(model=self.served_model_name, prompt_ids=prompt, result=result, parsed=parsed,
                             tt=self.tokens, with_reasoning_fields=bool(self.parser.reasoning_parser),
                             logprobs=bool(req.logprobs), as_id=bool(req.return_tokens_as_token_ids),
                             return_token_ids=bool(req.return_token_ids))

    def tokenize(self, body: Any) -> dict:
        req = validate(TokenizeRequest, body)
        self._check_model(req.model)
        if req.messages is not None:
            tokens = self.plan_prompt(req)  # the same ids the chat path serves, corrections included (§4.3, §8.6)
        else:
            tokens = list(self.tokenizer(req.prompt, add_special_tokens=req.add_special_tokens)["input_ids"])
        return {"count": len(tokens), "max_model_len": self.engine.max_model_len, "tokens": tokens,
                "token_strs": None}

    def detokenize(self, body: Any) -> dict:
        req = validate(DetokenizeRequest, body)
        self._check_model(req.model)
        check_vocab(req.tokens, self.engine.vocab_size, "tokens")
        return {"prompt": self.tokenizer.decode(req.tokens)}

    async def completions(self, body: Any) -> dict:
        req = validate(CompletionRequest, body)
        self._check_model(req.model)
        if isinstance(req.prompt, str):
            prompt = list(self.tokenizer(req.prompt)["input_ids"])
        else:
            prompt = list(req.prompt)
            check_vocab(prompt, self.engine.vocab_size, "prompt")
        if not prompt:  # found by the fuzz: an empty prompt reached the engine (HTTP 500)
            raise bad_request("prompt is empty: there is nothing to complete or score", "prompt")
        rescoring = req.max_tokens == 0
        if rescoring and not req.echo and req.prompt_logprobs is None:
            raise bad_request("max_tokens: 0 is only meaningful with echo or prompt_logprobs", "max_tokens")
        # Pure rescoring samples nothing, so the sampling pin does not apply to it.
        temperature, top_p = (1.0, 1.0) if rescoring else self.policy.resolve(req.temperature, req.top_p)
        max_tokens = clamp_max_tokens(None if rescoring else req.max_tokens, len(prompt), self.engine.max_model_len)
        if rescoring:
            max_tokens = 1  # engines sample at least one token; it is dropped below
        want_prompt_lps = req.prompt_logprobs is not None or (req.echo and req.logprobs is not None)
        params = GenerateParams(max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                                top_logprobs=req.logprobs or 0, seed=req.seed,
                                json_schema=None if rescoring or not req.structured_outputs
                                else req.structured_outputs["json"],
                                prompt_logprobs=max(req.prompt_logprobs or 0, req.logprobs or 0)
                                if want_prompt_lps else None)
        result = await self.generate(prompt, params)
        gen = [] if rescoring else list(result.token_ids)
        finish = "length" if rescoring else result.finish_reason
        result.finish_reason = finish
        text = self.tokenizer.decode(self._visible_ids(gen, finish), skip_special_tokens=True)
        prompt_text = self.tokenizer.decode(prompt) if req.echo else ""
        return completion_response(model=self.served_model_name, prompt_ids=prompt, prompt_text=prompt_text,
                                   result=result, gen_ids=gen, text=text, tt=self.tokens, echo=req.echo,
                                   logprobs=req.logprobs, prompt_logprobs=req.prompt_logprobs,
                                   as_id=bool(req.return_tokens_as_token_ids),
                                   return_token_ids=bool(req.return_token_ids))

    async def reload(self, body: Any) -> dict:
        """Weight sync for the GRPO loop (contract R8): load a directory, reset the prefix cache."""
        req = validate(ReloadRequest, body)
        path = Path(req.path)
        shown = repr(req.path if len(req.path) <= 200 else req.path[:200] + "...")
        # resolved (symlinks and "..") before the check: a path may only name a directory under a root
        try:  # found by the stateful fuzz: a NUL byte or an over-long name raised out of these (HTTP 500)
            resolved = path.resolve() if path.is_absolute() else None
            allowed = resolved is not None and any(resolved.is_relative_to(root) for root in self.weights_roots)
            is_dir = allowed and path.is_dir()
        except (OSError, ValueError) as exc:
            raise bad_request(f"path {shown} is not a usable file system path: {exc}"[:400], "path") from exc
        if not allowed:
            raise ApiError(403, f"path {shown} is not under an allowed weights root: reloads read absolute "
                                "paths under the model's directory or a --weights-root directory only",
                           param="path", type="permission_error")
        if not is_dir:
            raise bad_request(f"path {shown} is not a directory", "path")
        try:
            version = await self.load_weights(req.path)
        except EngineError as exc:
            raise ApiError(exc.status, str(exc), param=exc.param) from exc
        log.info("weights reloaded from %s (version %d)", req.path, version)
        return {"weight_version": version}
