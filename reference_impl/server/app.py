"""The HTTP layer: routes, bearer auth, and OpenAI-style errors for everything that goes wrong.

Bodies are read and validated by the service (not by FastAPI's signature binding) so malformed
JSON, wrong types and bad values all come back in one error shape, 4xx, naming the field (E23).

Chat and completion responses say where their time went in the standard ``Server-Timing`` header
(milliseconds): ``engine;dur=12.31, server;dur=1.84, server-cpu;dur=1.52``, where ``engine`` is the time
awaiting the engine's generate, ``server`` the rest of the handler (body parsing, validation, render, splice,
output parsing, building and serialising the response) and ``server-cpu`` the CPU time the serving thread spent
on that rest (exact for one request at a time; under concurrency other requests' work shifts between the two).
``benchmarks/bench_long_history.py`` reads it.
"""
from __future__ import annotations

import gc
import logging
import secrets
import time
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic_core import to_json
from starlette.exceptions import HTTPException as StarletteHTTPException

from .protocol import ApiError
from .service import RequestTiming, Service, start_request_timing

log = logging.getLogger("gym_conformance.server")
OPEN_PATHS = {"/health"}


MAX_BODY_BYTES = 64 * 2**20  # a long Gym history with its token bundles is a few MB


async def _body_bytes(request: Request) -> bytes:
    """The raw request body, refused with a 413 past the limit; the service decodes and validates it."""
    limit = getattr(request.app.state, "max_body_bytes", MAX_BODY_BYTES)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the request body is {int(declared)} bytes; this server accepts at most {limit} "
                            "(--max-body-bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():  # a chunked body without a length is cut off at the limit too
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the request body exceeds {limit} bytes, the most this server accepts "
                                "(--max-body-bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


class FastJSONResponse(JSONResponse):
    """Starlette's ``JSONResponse`` serialised by pydantic's serializer, at a sixth of ``json.dumps``' cost (0.3 ms of
    a 32-turn chat call, whose response carries the prompt's ids twice). For the plain JSON values the service
    builds it writes the same document: key order, raw UTF-8 and string escapes alike, every float in a shortest
    form that parses back to the same double (only the spelling of some differs: ``-1e-05`` as ``-0.00001``)."""

    def render(self, content: Any) -> bytes:
        try:
            body = to_json(content)
        except ValueError:  # what pydantic refuses (a lone surrogate, ...), json.dumps decides, as before
            return super().render(content)
        # json.dumps(allow_nan=False) refuses NaN and infinities, which pydantic writes as bare NaN/Infinity: when one
        # may be there, json.dumps decides too (a string holding either word comes out the same either way)
        if b"NaN" in body or b"Infinity" in body:
            return super().render(content)
        return body


class BearerAuth:
    """Plain ASGI middleware (Starlette's BaseHTTPMiddleware costs ~1 ms a request): every route but
    /health needs ``Authorization: Bearer <key>``, else 401 in the OpenAI error shape."""

    def __init__(self, app, *, api_key: str):
        self.app, self.expected = app, b"bearer " + api_key.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        header = dict(scope["headers"]).get(b"authorization", b"").strip()
        scheme, _, token = header.partition(b" ")
        if not secrets.compare_digest(scheme.lower() + b" " + token.strip(), self.expected):
            err = ApiError(401, "missing or invalid API key: send Authorization: Bearer <key>",
                           type="authentication_error")
            return await JSONResponse(err.body(), status_code=401)(scope, receive, send)
        return await self.app(scope, receive, send)


def _with_server_timing(response: JSONResponse, start: tuple[float, float], timing: RequestTiming) -> JSONResponse:
    """``Server-Timing: engine;dur=E, server;dur=S, server-cpu;dur=C`` (ms): E awaited the engine, S = the handler's
    time less E, C = the CPU time the serving thread spent on S (S less C: waiting for the CPU, or for the body)."""
    total = time.perf_counter() - start[0]
    engine = min(timing.engine_seconds, total)
    cpu = max(time.thread_time() - start[1] - timing.engine_thread_cpu_seconds, 0.0)
    response.headers["server-timing"] = (f"engine;dur={engine * 1000:.2f}, server;dur={(total - engine) * 1000:.2f}, "
                                         f"server-cpu;dur={cpu * 1000:.2f}")
    return response


def create_app(service: Service, *, api_key: str | None = None, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """``service.engine.start()`` runs in the app's lifespan, inside the server's event loop."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.engine.start()
        # The startup heap (torch, transformers, vLLM, the tokenizer: millions of objects) out of the collector's
        # reach, as stock vLLM's server does (``freeze_gc_heap``): else every full collection walks it, a pause of
        # about 0.4 s every few seconds under a GRPO loop's load, which stalls every request in flight.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()  # an app run in someone's process (tests) leaves their collector as it found it
            await service.engine.close()

    app = FastAPI(title="gym-conformance reference server", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json")

    def openapi() -> dict:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            from .openapi import describe

            app.openapi_schema = describe(get_openapi(title=app.title, version="1", routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi
    app.state.service = service
    app.state.max_body_bytes = max_body_bytes

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):  # unknown route, wrong method
        err = ApiError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")
        return JSONResponse(err.body(), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)
        err = ApiError(500, f"internal error: {type(exc).__name__}: {exc}", type="internal_server_error")
        return JSONResponse(err.body(), status_code=500)

    if api_key:
        app.add_middleware(BearerAuth, api_key=api_key)

    @app.get("/health")
    async def health():
        if await service.engine.healthy():
            return JSONResponse({"status": "ok", "weight_version": service.engine.weight_version})
        err = ApiError(503, "engine is not healthy", type="service_unavailable")
        return JSONResponse(err.body(), status_code=503)

    @app.get("/v1/models")
    async def models():
        return service.models()

    # Bodies are plain JSON types already: JSONResponse skips FastAPI's jsonable_encoder walk
    # (~1 ms per chat response with its id lists, measurable in bench_server_throughput).
    # Timed from the handler's first line to the serialised response (JSONResponse renders the body when built).
    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        start, timing = (time.perf_counter(), time.thread_time()), start_request_timing()
        return _with_server_timing(FastJSONResponse(await service.chat(await _body_bytes(request))), start, timing)

    @app.post("/v1/completions")
    async def completions(request: Request):
        start, timing = (time.perf_counter(), time.thread_time()), start_request_timing()
        return _with_server_timing(FastJSONResponse(await service.completions(await _body_bytes(request))), start,
                                   timing)

    async def tokenize(request: Request):
        return FastJSONResponse(service.tokenize(await _body_bytes(request)))

    async def detokenize(request: Request):
        return service.detokenize(await _body_bytes(request))

    # Gym calls /tokenize at the server root (contract §2); vLLM serves both spellings.
    for prefix in ("", "/v1"):
        app.add_api_route(prefix + "/tokenize", tokenize, methods=["POST"])
        app.add_api_route(prefix + "/detokenize", detokenize, methods=["POST"])

    @app.post("/weights/reload")
    async def reload(request: Request):
        return await service.reload(await _body_bytes(request))

    @app.get("/weights")
    async def weights():
        return {"weight_version": service.engine.weight_version}

    return app
