"""Endpoints that are broken below the contract (transport level), one behaviour each, and a way to serve an
ASGI app on a real local port for tests that drive the suite through pytest (pytester).

Contract defects live in one place, the mutant zoo (``reference_impl/mutants``); what is here cannot be a
mutant of a correct server: it does not answer like a server at all.
"""
from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Iterator

from conformance._process import free_port


class Hostile:
    """``Hostile("5xx")``: every route answers 503; ``"malformed"``: 200 with a body that is not JSON;
    ``"slow"``: chat completions answer after ``delay_s`` seconds (and then 503)."""

    def __init__(self, behaviour: str, *, delay_s: float = 3.0) -> None:
        if behaviour not in ("5xx", "malformed", "slow"):
            raise ValueError(behaviour)
        self.behaviour, self.delay_s = behaviour, delay_s

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        if self.behaviour == "slow" and scope["path"].endswith("/chat/completions"):
            await asyncio.sleep(self.delay_s)
        status, body, kind = {"malformed": (200, b"{not json", b"application/json")}.get(
            self.behaviour, (503, b'{"error": {"message": "overloaded", "type": "server_error", "code": 503}}',
                             b"application/json"))
        if self.behaviour == "slow" and not scope["path"].endswith("/chat/completions"):
            status, body = 200, b'{"object": "list", "data": [{"id": "m", "object": "model"}]}'
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", kind)]})
        await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def serve(app, *, lifespan: str = "off") -> Iterator[str]:
    """Run an ASGI ``app`` with uvicorn in a thread on a free local port; yields ``http://127.0.0.1:PORT``."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan=lifespan))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.02)
    if not server.started:
        raise RuntimeError(f"the test server on port {port} did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
