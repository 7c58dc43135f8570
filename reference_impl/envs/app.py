"""The HTTP layer: one task served as a NeMo Gym resources server, with Gym's routes and session cookie.

Routes (the contract of Gym 0.7.0's ``SimpleResourcesServer`` and its simple agent):

- ``POST /seed_session``, body: the dataset row -> ``{}``, with a ``Set-Cookie`` starting a new session
  that holds the task's per-row state;
- ``POST /<tool>`` (``/lookup`` for ``lookup``), body: the tool call's parsed arguments, with the session
  cookie -> the tool's body text, byte for byte (the agent hands the raw body to the model);
- ``POST /verify``, body: the row plus ``response`` -> the body echoed with ``reward`` and
  ``reward_components`` added (Gym's ``BaseVerifyResponse`` is its request plus ``reward``);
- ``POST /aggregate_metrics``, body ``{"verify_responses": [...]}`` -> summary numbers (``metrics``), the
  route Gym's rollout collection reaches through the agent at its end;
- ``GET /health`` -> 200.

Bodies are read and checked here and in ``tasks`` rather than bound by FastAPI, so bad JSON, a missing
field and a wrong type all come back as one OpenAI-style error object naming the field (4xx), a verifier
that raises comes back as a 500 error object (and the server keeps serving), and an unknown route as a
404 error object.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .errors import ApiError
from .metrics import aggregate_metrics
from .sessions import DEFAULT_CAPACITY, SessionStore, cookie_name
from .tasks import Task, ToolHandler, check_row, get_task, verify_request

log = logging.getLogger("gym_conformance.envs")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; 400 for an empty, malformed or non-object body."""
    raw = await request.body()
    if not raw.strip():
        raise ApiError(400, "the request body is empty; send a JSON object")
    try:
        # NaN/Infinity are not JSON, and an echo containing them could not be encoded back
        body = json.loads(raw, parse_constant=_reject_constant)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ApiError(400, f"malformed JSON in the request body: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, f"the request body must be a JSON object, got {type(body).__name__}")
    return body


def guarded(where: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run task code: its own ``ApiError`` passes through, anything else becomes a 500 naming the failure."""
    try:
        return fn(*args)
    except ApiError:
        raise
    except Exception as exc:  # noqa: BLE001 - a verifier bug must not take the server down
        log.exception("%s failed", where)
        raise ApiError(500, f"{where} failed: {type(exc).__name__}: {exc}", type="server_error") from exc


def create_app(task: Task | str, *, max_sessions: int = DEFAULT_CAPACITY) -> FastAPI:
    """The resources server of ``task`` (a registered name or a ``Task``, so tests can serve their own)."""
    task = get_task(task) if isinstance(task, str) else task
    sessions = SessionStore(max_sessions)
    cookie = cookie_name(task.name)
    app = FastAPI(title=f"gym-conformance env: {task.name}", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.task, app.state.sessions, app.state.cookie_name = task, sessions, cookie

    def with_session(response: Response, session_id: str) -> Response:
        # Like Gym's session middleware, every answer within a session carries its cookie again.
        response.set_cookie(cookie, session_id, path="/", httponly=True, samesite="lax")
        return response

    def session_of(request: Request) -> tuple[str | None, dict[str, Any] | None]:
        session_id = request.cookies.get(cookie)
        state = sessions.get(session_id)
        return (session_id if state is not None else None), state

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):  # unknown route, wrong method
        routes = ", ".join(sorted(["GET /health", "POST /seed_session", "POST /verify",
                                   "POST /aggregate_metrics", *(f"POST /{name}" for name in task.tools)]))
        what = f"{request.method} {request.url.path}: {exc.detail}"
        err = ApiError(exc.status_code, f"{what} (the {task.name} environment serves {routes})")
        return JSONResponse(err.body(), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):  # last resort; task code is already guarded
        log.exception("unhandled error on %s", request.url.path)
        err = ApiError(500, f"internal error on {request.url.path}: {type(exc).__name__}: {exc}",
                       type="server_error")
        return JSONResponse(err.body(), status_code=500)

    @app.get("/health")
    async def health():
        return {"status": "ok", "task": task.name, "sessions": len(sessions)}

    @app.post("/seed_session")
    async def seed_session(request: Request):
        row = check_row(await json_object(request))
        state = guarded(f"seeding a {task.name} session", task.seed, row)
        return with_session(JSONResponse({}), sessions.create(state))

    @app.post("/verify")
    async def verify(request: Request):
        body = await json_object(request)
        session_id, state = session_of(request)
        fields = guarded(f"the {task.name} verifier", verify_request, task, body, state)
        response = JSONResponse({**body, **fields})
        return with_session(response, session_id) if session_id else response

    @app.post("/aggregate_metrics")
    async def metrics(request: Request):
        return JSONResponse(guarded("aggregating metrics", aggregate_metrics, await json_object(request)))

    def tool_route(name: str, handler: ToolHandler):
        async def call_tool(request: Request):
            arguments = await json_object(request)
            session_id, state = session_of(request)
            if state is None:
                raise ApiError(400, f"POST /{name} needs a seeded session: call POST /seed_session with the "
                                    f"row first and send back its `{cookie}` cookie (none was sent, or it is "
                                    "unknown or expired)", param=cookie)
            text = guarded(f"the {name} tool", handler, arguments, state)
            return with_session(Response(text.encode(), media_type="application/json"), session_id)
        call_tool.__name__ = f"tool_{name}"
        return call_tool

    for name, handler in task.tools.items():
        app.add_api_route(f"/{name}", tool_route(name, handler), methods=["POST"])

    return app
