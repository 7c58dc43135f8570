"""A zoo of hostile endpoints: small local HTTP servers, one misbehaviour each (issue 13).

Raw asyncio sockets, not a web framework: most misbehaviours (headers then silence, a byte every few seconds, a
reset mid-exchange, a 50 MB body) are below what a framework lets an app do. Every endpoint answers the
readiness probe (``GET /v1/models``) properly, so the suite gets past its start and meets the misbehaviour on
the calls that matter; each one serves on its own port from one background thread.
"""
from __future__ import annotations

import asyncio
import json
import threading
from contextlib import contextmanager

SCRIPT = "<script>alert('pwned')</script>"
MODELS = json.dumps({"object": "list", "data": [{"id": "tiny", "object": "model", "max_model_len": 1024}]}).encode()


def _response(status: int, body: bytes, content_type: str = "application/json", extra: str = "") -> bytes:
    reason = {200: "OK", 302: "Found", 429: "Too Many Requests", 500: "Internal Server Error",
              503: "Service Unavailable"}.get(status, "Status")
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"{extra}Connection: keep-alive\r\n\r\n")
    return head.encode() + body


def _hostile_chat() -> bytes:
    """A chat answer whose every string an HTML report might show is markup."""
    return json.dumps({"id": SCRIPT, "object": "chat.completion", "model": SCRIPT, "choices": [{
        "index": 0, "finish_reason": SCRIPT, "message": {
            "role": "assistant", "content": SCRIPT, "prompt_token_ids": [1, 2], "generation_token_ids": [3],
            "generation_log_probs": [-0.5],
            "tool_calls": [{"id": SCRIPT, "type": "function", "function": {"name": SCRIPT, "arguments": SCRIPT}}]}}],
        "error": {"message": SCRIPT}}).encode()


class Behaviour:
    """What the endpoint does with every request but the readiness probe."""

    def __init__(self, name: str) -> None:
        self.name, self.posts = name, 0
        self.server: asyncio.Server | None = None

    async def answer(self, writer: asyncio.StreamWriter, path: str) -> bool:
        """Write (or withhold) the answer; False closes the connection."""
        self.posts += 1
        name = self.name
        if name == "hangs-after-headers":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{")
            await writer.drain()
            await asyncio.sleep(3600)
        elif name == "drips-bytes":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
            for _ in range(100000):
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(2)
        elif name == "resets-connections":
            writer.transport.abort()  # RST, no answer
            return False
        elif name == "refuses-mid-run":
            if self.posts > 3:  # the process "died": nothing listens any more, the open connection is cut
                self.server.close()
                writer.transport.abort()
                return False
            writer.write(_response(200, b'{"choices": []}'))
        elif name == "storm-503":
            writer.write(_response(503, b'{"error": {"message": "overloaded"}}'))
        elif name == "rate-limited-429":
            writer.write(_response(429, b'{"error": {"message": "slow down"}}', extra="Retry-After: 1\r\n"))
        elif name == "html-500":
            writer.write(_response(500, f"<html><body><h1>500</h1>{SCRIPT}</body></html>".encode(), "text/html"))
        elif name == "body-50mb":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b" " * 2**20
            for _ in range(50):
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        elif name == "malformed-json":
            writer.write(_response(200, b'{"choices": [{"message": {"content": "cut'))
        elif name == "wrong-content-type":
            writer.write(_response(200, b"plain words, not JSON", "text/plain"))
        elif name == "redirect-loop":
            writer.write(_response(302, b"", extra=f"Location: {path}\r\n"))
        elif name == "script-everywhere":
            writer.write(_response(200, _hostile_chat()))
        else:
            raise ValueError(name)
        await writer.drain()
        return True


BEHAVIOURS = ("hangs-after-headers", "drips-bytes", "resets-connections", "refuses-mid-run", "storm-503",
              "rate-limited-429", "html-500", "body-50mb", "malformed-json", "wrong-content-type", "redirect-loop",
              "script-everywhere")


async def _handle(behaviour: Behaviour, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            length = next((int(v) for k, _, v in (x.partition(":") for x in lines[1:]) if k.lower() == "content-length"), 0)
            if length:
                await reader.readexactly(length)
            if method == "GET" and path.rstrip("/").endswith("/models"):
                writer.write(_response(200, MODELS))
                await writer.drain()
                continue
            if not await behaviour.answer(writer, path):
                return
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
        pass  # the client gave up, or the zoo is shutting down
    finally:
        if not writer.transport.is_closing():
            writer.close()


class Urls(dict):
    """``{name: base URL ending in /v1}``; ``posts(name)``: requests the endpoint has seen past the probe."""

    def __init__(self) -> None:
        super().__init__()
        self.behaviours: dict[str, Behaviour] = {}

    def posts(self, name: str) -> int:
        return self.behaviours[name].posts


@contextmanager
def hostile_endpoints(names=BEHAVIOURS):
    """``Urls`` of every behaviour, served until the block ends."""
    loop = asyncio.new_event_loop()
    ready = Urls()
    servers = []

    async def start() -> None:
        for name in names:
            behaviour = Behaviour(name)
            server = await asyncio.start_server(lambda r, w, b=behaviour: _handle(b, r, w), "127.0.0.1", 0)
            behaviour.server = server
            ready.behaviours[name] = behaviour
            servers.append(server)
            ready[name] = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield ready
    finally:
        async def stop() -> None:
            for server in servers:
                server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
