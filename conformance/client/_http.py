"""A Gym-faithful async HTTP client for the endpoint under test (NeMo Gym ``vllm_model`` in training mode).

What it copies from Gym (contract §2-§5): forced training fields and ``n=1``; ``Authorization: Bearer``;
429/502/503/504/520 retried as rate limiting, 500 retried up to ``max_tries``, 0.5 s apart; a 400 whose body
says "context length"/"max_tokens" becomes an incomplete call with no tokens; ``/tokenize`` at the server root
for the fallback source. What it adds for a harness: a retry budget (Gym retries rate limits forever), one-line
:class:`EndpointError` causes instead of tracebacks, and the time spent awaiting the server. And what a CI job
needs from a half-broken endpoint: every request ends within ``timeout`` whole (an endpoint that hangs after its
headers or drips bytes too), a response larger than ``max_response_bytes`` is refused, and after
``breaker_threshold`` consecutive requests that got no usable answer (timeouts, resets, refused connections,
retries exhausted, oversized bodies) the client stops driving the endpoint: every later request raises
:class:`EndpointStopped` at once, naming the cause, as it does once the run's ``deadline`` has passed.
"""
from __future__ import annotations

import asyncio
import json
import shlex
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..core import EndpointError, EndpointStopped
from ._extract import Bundle, Sources, TokenMetadataError, choose, read_sources
from ._gym import gym_profile

RATE_LIMIT_STATUSES = {429, 502, 503, 504, 520}
MAX_RESPONSE_BYTES = 16 * 2**20  # a 32k-token answer with its ids and log probs is about 1 MB
BREAKER_THRESHOLD = 3            # consecutive requests without a usable answer before the client stops
OVERFLOW_MARKERS = ("context length", "max_tokens")


def split_base(url: str) -> tuple[str, str]:
    """``(api_base, root)``: the OpenAI base ending in ``/v1`` and the server root that serves ``/tokenize``."""
    url = url.rstrip("/")
    api = url if url.endswith("/v1") else url + "/v1"
    return api, api[: -len("/v1")]


def training_body(messages: list[dict[str, Any]], *, model: str, tools: list[dict] | None = None,
                  temperature: float = 1.0, top_p: float = 1.0, max_tokens: int | None = 64,
                  chat_template_kwargs: dict | None = None, inline_ids: bool = True,
                  **extra: Any) -> dict[str, Any]:
    """The chat body Gym's ``_preprocess_chat_completion_create_params`` sends with ``return_token_id_information``.

    ``inline_ids`` is Gym's ``request_prompt_and_generation_token_ids`` (adds ``return_token_ids``; Gym 0.7.0 and
    later; the client turns it on where the Gym version has it, so vLLM-native ids are exercised).
    """
    if extra.get("n") not in (None, 1):
        raise ValueError("n must be 1: Gym requires n=1 when return_token_id_information=true")
    body: dict[str, Any] = {"model": model, "messages": messages, **{k: v for k, v in extra.items() if v is not None}}
    if tools:
        body["tools"] = tools
        body.setdefault("tool_choice", "auto")
        body.setdefault("parallel_tool_calls", True)
    else:  # Gym drops both when there are no tools
        body.pop("tool_choice", None)
        body.pop("parallel_tool_calls", None)
    body.update(temperature=temperature, top_p=top_p)
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if chat_template_kwargs:
        body["chat_template_kwargs"] = chat_template_kwargs
    # forced last: Gym overwrites whatever the caller sent
    body.update(logprobs=True, top_logprobs=0, return_tokens_as_token_ids=True)
    if inline_ids:
        body["return_token_ids"] = True
    return body


@dataclass
class ChatCall:
    """One ``/chat/completions`` call as Gym sees it: request, raw reply, extracted bundle."""

    url: str
    request: dict[str, Any]
    status: int
    response: Any
    message: dict[str, Any] = field(default_factory=dict)
    finish_reason: str | None = None
    incomplete: bool = False           # Gym's 400-context-length path: no tokens
    bundle: Bundle | None = None
    sources: Sources | None = None
    metadata_error: TokenMetadataError | None = None
    tokenize_body: dict[str, Any] | None = None  # set when source 3 needed /tokenize


@dataclass
class Stats:
    attempts: int = 0      # requests asked for, sent or not (a stopped client sends none)
    requests: int = 0
    retries: int = 0
    server_s: float = 0.0  # wall time spent awaiting responses
    # answers with a server error (5xx other than the statuses Gym treats as rate limiting), retried or not: Gym's
    # retries can hide a server that sheds load with 500s, so the load tier reads them here
    server_errors: int = 0
    first_server_error: str | None = None


# Reports are shared artefacts: a reproduction names the key by the variable Gym reads it from, never by value
# (run it after ``export OPENAI_API_KEY=<your key>``; the shell expands it inside the double quotes).
AUTH_HEADER = '-H "Authorization: Bearer $OPENAI_API_KEY"'


def curl_for(url: str, body: Any = None) -> str:
    """A copy-pastable reproduction of one POST (a GET when ``body`` is None); the key is ``$OPENAI_API_KEY``."""
    if body is None:
        return f"curl -sS {shlex.quote(url)} {AUTH_HEADER}"
    return (f"curl -sS -X POST {shlex.quote(url)} -H 'Content-Type: application/json' {AUTH_HEADER} "
            f"-d {shlex.quote(json.dumps(body))}")


class GymClient:
    """``async with GymClient("http://host:8000/v1", model="m") as c: call = await c.chat(messages)``."""

    def __init__(self, endpoint: str, *, model: str | None = None, api_key: str = "dummy_key",
                 timeout: float = 60.0, concurrency: int = 8, max_tries: int = 3, retry_budget_s: float = 20.0,
                 retry_pause_s: float = 0.5, transport: httpx.AsyncBaseTransport | None = None,
                 chat_template_kwargs: dict | None = None, gym_version: str | None = None,
                 reasoning_parser: bool = True, max_response_bytes: int = MAX_RESPONSE_BYTES,
                 breaker_threshold: int = BREAKER_THRESHOLD, deadline: float | None = None) -> None:
        self.api, self.root = split_base(endpoint)
        # which Gym this client is (docs/gym-versions.md) and Gym's uses_reasoning_parser, which must match the
        # endpoint's reasoning-parser setting (contract §3.4)
        self.gym, self.reasoning_parser = gym_profile(gym_version), reasoning_parser
        # sent on every training call, as Gym sends its configured chat_template_kwargs on every call
        self.chat_template_kwargs = chat_template_kwargs or None
        self.model, self.api_key = model, api_key
        self.max_tries, self.retry_budget_s, self.retry_pause_s = max_tries, retry_budget_s, retry_pause_s
        self.timeout = timeout
        self.max_response_bytes, self.breaker_threshold = max_response_bytes, breaker_threshold
        self.deadline = deadline            # time.monotonic() after which no request is sent (the run's bound)
        self.failures_in_a_row = 0
        self.stopped: str | None = None     # why the client stopped driving the endpoint, once it has
        self._sem = asyncio.Semaphore(concurrency)
        self.transport = transport  # None: the network; the load tier's own clients reuse it
        # certificates are loaded only for https: building a verifying SSL context costs ~25 ms per client
        # as many connections as requests in flight (httpx's default pool of 100 would queue a load run's calls)
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport, verify=self.api.startswith("https:"),
                                       headers={"Authorization": f"Bearer {api_key}"},
                                       limits=httpx.Limits(max_connections=max(concurrency, 10),
                                                           max_keepalive_connections=max(concurrency, 10)))
        self.stats = Stats()

    async def __aenter__(self) -> "GymClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def curl(self, url: str, body: Any = None) -> str:
        return curl_for(url, body)

    # -- transport with Gym's retry rules -------------------------------------------------------------
    async def request(self, method: str, url: str, body: Any = None) -> httpx.Response:
        """Send with Gym's retries; raise :class:`EndpointError` naming the cause when nothing usable came back."""
        self.stats.attempts += 1
        self._check_running(method, url, body)
        try:
            resp = await self._request(method, url, body)
        except EndpointStopped:
            raise
        except EndpointError as exc:
            if exc.status is None or exc.status >= 500 or exc.status in RATE_LIMIT_STATUSES:
                self._failed(str(exc))  # no usable answer: counts towards stopping
            raise
        self.failures_in_a_row = 0
        return resp

    def _check_running(self, method: str, url: str, body: Any) -> None:
        if self.stopped is None and self.deadline is not None and time.monotonic() >= self.deadline:
            self.stopped = "the run's deadline (--conformance-deadline) passed"
        if self.stopped is not None:
            raise EndpointStopped(f"{method} {url}: not sent: {self.stopped}", request=body, url=url)

    def _failed(self, cause: str) -> None:
        self.failures_in_a_row += 1
        if self.failures_in_a_row >= self.breaker_threshold and self.stopped is None:
            self.stopped = (f"the endpoint stopped answering ({self.failures_in_a_row} requests in a row got no "
                            f"usable answer; the last: {cause})")

    async def _request(self, method: str, url: str, body: Any) -> httpx.Response:
        start, tries = time.monotonic(), 0
        while True:
            tries += 1
            self._check_running(method, url, body)
            try:
                async with self._sem:
                    t0 = time.perf_counter()
                    try:  # the whole exchange within the timeout: headers, then every byte of the body
                        resp = await asyncio.wait_for(self._send(method, url, body), self.timeout)
                    finally:
                        self.stats.server_s += time.perf_counter() - t0
                        self.stats.requests += 1
            except EndpointError:
                raise
            except Exception as exc:  # noqa: BLE001 - transport errors (httpx or raw httpcore) become one cause
                if isinstance(exc, (httpx.TimeoutException, asyncio.TimeoutError)) or "Timeout" in type(exc).__name__:
                    raise EndpointError(f"{method} {url}: no complete response within {self.timeout:g}s (timeout)",
                                        request=body, url=url) from None
                raise EndpointError(f"{method} {url}: cannot connect ({type(exc).__name__}: {exc})",
                                    request=body, url=url) from None
            status = resp.status_code
            if status >= 500 and status not in RATE_LIMIT_STATUSES:
                self.stats.server_errors += 1
                self.stats.first_server_error = self.stats.first_server_error or \
                    f"{method} {url}: HTTP {status}: {resp.text[:200]!r}"
            retryable = status in RATE_LIMIT_STATUSES or (status == 500 and tries < self.max_tries)
            if not retryable or time.monotonic() - start + self.retry_pause_s > self.retry_budget_s:
                if retryable or status in RATE_LIMIT_STATUSES or status >= 500:
                    raise EndpointError(f"{method} {url}: HTTP {status} after {tries} tries over "
                                        f"{time.monotonic() - start:.1f}s: {resp.text[:200]!r}",
                                        request=body, response=resp.text[:2000], status=status, url=url)
                return resp
            self.stats.retries += 1
            await asyncio.sleep(self.retry_pause_s)

    async def _send(self, method: str, url: str, body: Any) -> httpx.Response:
        """One exchange, the body read with a size cap (a 50 MB answer is refused at the cap, not buffered)."""
        limit = self.max_response_bytes
        async with self._http.stream(method, url, json=body) as resp:
            declared = resp.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise EndpointError(f"{method} {url}: HTTP {resp.status_code} announces a {int(declared)}-byte body; "
                                    f"the most the harness reads is {limit} (--conformance-max-response-bytes)",
                                    request=body, status=None, url=url)
            chunks, size = [], 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise EndpointError(f"{method} {url}: HTTP {resp.status_code} body exceeds {limit} bytes, the "
                                        "most the harness reads (--conformance-max-response-bytes)",
                                        request=body, status=None, url=url)
                chunks.append(chunk)
        # the bytes are decoded already: the copy must not announce an encoding or a length of its own
        headers = [(k, v) for k, v in resp.headers.multi_items() if k.lower() not in ("content-encoding",
                                                                                      "content-length")]
        return httpx.Response(resp.status_code, headers=headers, content=b"".join(chunks), request=resp.request)

    async def post_json(self, url: str, body: Any) -> tuple[int, Any]:
        """POST and decode JSON; a body that is not JSON is an :class:`EndpointError`, whatever the status."""
        resp = await self.request("POST", url, body)
        return resp.status_code, _json(resp, url, body)

    async def get_json(self, url: str) -> tuple[int, Any]:
        resp = await self.request("GET", url)
        return resp.status_code, _json(resp, url, None)

    # -- Gym calls ------------------------------------------------------------------------------------
    async def models(self) -> tuple[int, Any]:
        return await self.get_json(self.api + "/models")

    async def max_model_len(self) -> int | None:
        """The context window ``/v1/models`` reports (vLLM's ``max_model_len``), or None."""
        _, data = await self.models()
        limit = (data.get("data") or [{}])[0].get("max_model_len") if isinstance(data, dict) else None
        return limit if isinstance(limit, int) else None

    async def body(self, messages: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
        """Gym's training body for this endpoint: the resolved model and the configured chat_template_kwargs,
        for probes that alter the body before sending it (``chat(..., raw_body=...)``)."""
        params.setdefault("chat_template_kwargs", self.chat_template_kwargs)
        params.setdefault("model", await self.resolve_model())
        params.setdefault("inline_ids", self.gym.supports_inline_ids)
        return training_body(messages, **params)

    async def resolve_model(self) -> str:
        """``--model`` or else the first id from ``/v1/models`` (like the draft validation page expects)."""
        if self.model:
            return self.model
        status, data = await self.models()
        try:
            self.model = data["data"][0]["id"]
        except (KeyError, IndexError, TypeError):
            raise EndpointError(f"GET {self.api}/models gave HTTP {status} without data[0].id; pass --model") from None
        return self.model

    async def tokenize(self, body: dict[str, Any]) -> tuple[int, Any]:
        return await self.post_json(self.root + "/tokenize", body)

    async def chat(self, messages: list[dict[str, Any]], *, raw_body: dict[str, Any] | None = None,
                   **params: Any) -> ChatCall:
        """One training call; ``raw_body`` bypasses :func:`training_body` for probes that need odd bodies."""
        body = raw_body if raw_body is not None else await self.body(messages, **params)
        url = self.api + "/chat/completions"
        status, data = await self.post_json(url, body)
        call = ChatCall(url=url, request=body, status=status, response=data)
        if status == 400 and any(m in json.dumps(data).lower() for m in OVERFLOW_MARKERS):
            call.incomplete, call.finish_reason = True, "length"   # Gym: empty incomplete result, no tokens
            return call
        if status != 200:
            raise EndpointError(f"POST {url}: HTTP {status}: {json.dumps(data)[:200]}", request=body,
                                response=data, status=status, url=url)
        try:
            call.sources = read_sources(data)
            choice = data["choices"][0]
            call.message = choice.get("message") or {}
            call.finish_reason = choice.get("finish_reason")
            prompt = None
            if call.sources.message is None and call.sources.inline_prompt is None:
                call.tokenize_body = tokenize_body(body)
                t_status, t_data = await self.tokenize(call.tokenize_body)
                prompt = t_data.get("tokens") if t_status == 200 and isinstance(t_data, dict) else None
            call.bundle = choose(call.sources, prompt)
        except TokenMetadataError as exc:
            exc.request, exc.response, exc.status, exc.url = call.request, call.response, call.status, call.url
            call.metadata_error = exc
        return call


_TOKENIZE_FIELDS = ("model", "messages", "tools", "chat_template_kwargs", "mm_processor_kwargs",
                    "required_prefix_token_ids")


def tokenize_body(chat_body: dict[str, Any]) -> dict[str, Any]:
    """The ``/tokenize`` body Gym builds from a chat body (``_TOKENIZE_CHAT_FIELDS``)."""
    return {k: chat_body[k] for k in _TOKENIZE_FIELDS if k in chat_body}


def _json(resp: httpx.Response, url: str, body: Any) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise EndpointError(f"{resp.request.method} {url}: HTTP {resp.status_code} with a body that is not JSON: "
                            f"{resp.text[:120]!r}", request=body, response=resp.text[:2000],
                            status=resp.status_code, url=url) from None
