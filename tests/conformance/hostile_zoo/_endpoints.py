"""A zoo of hostile endpoints: small local HTTP servers, one misbehaviour each (issue 13).

Raw asyncio sockets, not a web framework: most misbehaviours (headers then silence, a byte every few seconds, a
reset mid-exchange, a 50 MB body) are below what a framework lets an app do. Every endpoint answers the
readiness probe (``GET /v1/models``) properly, so the suite gets past its start and meets the misbehaviour on
the calls that matter; each one serves on its own port from one background thread.

Two answer well enough to be judged on what they say rather than how they fail: ``echoes-the-key`` repeats the
request's ``Authorization`` header in its content and its error bodies (the report must not), and
``foreign-vocab`` serves consistent token bundles in another model's much larger vocabulary (the checks run with
the fixture tokenizer must name the ids it cannot have produced).
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


# --- foreign-vocab: well-formed answers whose ids come from another model's vocabulary ----------------------------
FOREIGN_BASE, FOREIGN_START, FOREIGN_END = 100000, 151644, 151645  # Qwen's <|im_start|> and <|im_end|>
FOREIGN_MAX_LEN = 1024
FOREIGN_TEXT = "Hello there."


def foreign_ids(text: str) -> list[int]:
    """Byte-level ids of a vocabulary far larger than the fixture's: byte ``b`` is ``100000 + 197 b`` (<= 150235)."""
    return [FOREIGN_BASE + 197 * b for b in text.encode()]


def _foreign_text(ids: list[int]) -> str:
    return bytes((i - FOREIGN_BASE) // 197 for i in ids if FOREIGN_BASE <= i < FOREIGN_START).decode(errors="ignore")


def _foreign_prompt(messages: list) -> list[int]:
    """The last carried turn's prompt + generation verbatim (a correct splice), the rest rendered ChatML-like."""
    start, ids = 0, []
    for i, m in enumerate(messages):
        if isinstance(m, dict) and m.get("role") == "assistant" and m.get("prompt_token_ids") \
                and m.get("generation_token_ids"):
            start, ids = i + 1, [*m["prompt_token_ids"], *m["generation_token_ids"]]
    for m in messages[start:]:
        m = m if isinstance(m, dict) else {}
        content = m.get("content") if isinstance(m.get("content"), str) else json.dumps(m.get("content"))
        ids += [FOREIGN_START, *foreign_ids(f"{m.get('role')}\n{content}"), FOREIGN_END, *foreign_ids("\n")]
    return ids + [FOREIGN_START, *foreign_ids("assistant\n")]


def _error(status: int, message: str) -> bytes:
    return _response(status, json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                                   "code": status}}).encode())


def _foreign_answer(path: str, body: dict) -> bytes:
    if not path.endswith(("/tokenize", "/chat/completions")):
        return _error(404, f"no route {path}")
    messages = body.get("messages")
    if not isinstance(messages, list):
        return _error(400, "messages must be a list")
    prompt = _foreign_prompt(messages)
    if path.endswith("/tokenize"):
        return _response(200, json.dumps({"tokens": prompt, "count": len(prompt),
                                          "max_model_len": FOREIGN_MAX_LEN}).encode())
    if len(prompt) >= FOREIGN_MAX_LEN:
        return _error(400, f"This model's maximum context length is {FOREIGN_MAX_LEN} tokens; the prompt has "
                           f"{len(prompt)}")
    generation, finish = [*foreign_ids(FOREIGN_TEXT), FOREIGN_END], "stop"
    budget = min(int(body.get("max_tokens") or 64), FOREIGN_MAX_LEN - len(prompt))
    if len(generation) > budget:
        generation, finish = generation[:budget], "length"
    log_probs = [-0.25] * len(generation)
    message = {"role": "assistant", "content": _foreign_text(generation), "prompt_token_ids": prompt,
               "generation_token_ids": generation, "generation_log_probs": log_probs}
    return _response(200, json.dumps({
        "id": "chatcmpl-foreign", "object": "chat.completion", "model": body.get("model"), "prompt_token_ids": prompt,
        "choices": [{"index": 0, "finish_reason": finish, "message": message, "token_ids": generation,
                     "logprobs": {"content": [{"token": f"token_id:{t}", "logprob": lp, "bytes": None,
                                               "top_logprobs": []} for t, lp in zip(generation, log_probs)]}}],
        "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(generation),
                  "total_tokens": len(prompt) + len(generation)}}).encode())


# --- echoes-the-key: the request's Authorization header repeated in content and error bodies ----------------------
ECHO_STOP_AFTER = 25  # requests answered before every one is a 500 (the client stops: its message quotes one)


def _echo_error(auth: str) -> bytes:
    """The header whole, then again where the client's quote of an error body (its first 200 characters) cuts
    it: 12 characters of the key are left in the quote."""
    lead = f"internal error serving {auth} "
    head = len('{"error": {"message": "') + len(lead) + len("Bearer ")
    return json.dumps({"error": {"message": lead + "." * max(0, 188 - head) + auth}}).encode()


def _echo_answer(posts: int, path: str, body: dict, auth: str) -> bytes:
    if not path.endswith("/chat/completions"):
        return _response(400, json.dumps({"error": {"message": f"no {path} for {auth}", "type": auth,
                                                    "code": 400}}).encode())
    if posts > ECHO_STOP_AFTER or body.get("max_tokens") == 1:  # an error body, and the client's message, quote it
        return _response(500, _echo_error(auth))
    return _response(200, json.dumps({
        "id": auth, "object": "chat.completion", "model": auth, "choices": [{
            "index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": f"You sent {auth!r}.", "prompt_token_ids": [1, 2],
                "generation_token_ids": [3], "generation_log_probs": [-0.5]}}],
        "error": {"message": auth}}).encode())


class Behaviour:
    """What the endpoint does with every request but the readiness probe."""

    def __init__(self, name: str) -> None:
        self.name, self.posts = name, 0
        self.server: asyncio.Server | None = None

    async def answer(self, writer: asyncio.StreamWriter, path: str, body: bytes = b"",
                     headers: dict[str, str] | None = None) -> bool:
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
        elif name in ("echoes-the-key", "foreign-vocab"):
            try:
                request = json.loads(body or b"{}")
            except ValueError:
                request = None
            if not isinstance(request, dict):
                writer.write(_error(400, "the body is not a JSON object"))
            elif name == "echoes-the-key":
                writer.write(_echo_answer(self.posts, path, request, (headers or {}).get("authorization", "")))
            else:
                writer.write(_foreign_answer(path, request))
        else:
            raise ValueError(name)
        await writer.drain()
        return True


BEHAVIOURS = ("hangs-after-headers", "drips-bytes", "resets-connections", "refuses-mid-run", "storm-503",
              "rate-limited-429", "html-500", "body-50mb", "malformed-json", "wrong-content-type", "redirect-loop",
              "script-everywhere", "echoes-the-key", "foreign-vocab")


async def _handle(behaviour: Behaviour, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:]) if k}
            length = int(headers.get("content-length") or 0)
            body = await reader.readexactly(length) if length else b""
            if method == "GET" and path.rstrip("/").endswith("/models"):
                writer.write(_response(200, MODELS))
                await writer.drain()
                continue
            if not await behaviour.answer(writer, path, body, headers):
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
