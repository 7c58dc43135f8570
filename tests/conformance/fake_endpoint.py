"""A small Gym endpoint for tests: renders with a real fixture tokenizer, splices carried ids (§7.4), and can
inject one defect at a time so every check can be shown to catch the defect it targets.

``FakeEndpoint(ref).handler`` plugs into ``httpx.MockTransport``; ``serve(fake)`` runs it on a real port
(uvicorn in a thread) for plugin tests through pytester.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import re
import math
import threading
import time
from typing import Any, Iterator

import httpx

from conformance.checks import Reference
from conformance.core import splice

MAX_MODEL_LEN = 512


def token_lp(tid: int) -> float:
    """The toy model's log prob of a token after the first generated one (varies by id, so positions differ)."""
    return -0.5 - 0.4 * (tid % 5)


_THINK = re.compile(r"<think>.*?</think>", re.S)


class FakeEndpoint:
    def __init__(self, ref: Reference, *, mode: str = "splice", defects: set[str] | frozenset = frozenset(),
                 reply: str = "ok") -> None:
        self.ref, self.mode, self.defects, self.reply = ref, mode, set(defects), reply
        self.requests: list[dict[str, Any]] = []

    # -- the toy model --------------------------------------------------------------------------------
    def first_position(self, temperature: float) -> dict[int, float]:
        """Log probs of the first generated position: a fixed distribution over 20 ids, temperature-scaled."""
        head = self.ref.encode(self.reply)[0]
        ids = [head] + [i for i in range(3, 40) if i != head][:19]
        logits = [4.0] + [1.0 - 0.1 * k for k in range(19)]
        t = 1.0 if "raw-logprobs" in self.defects else temperature
        top = max(x / t for x in logits)
        norm = top + math.log(sum(math.exp(x / t - top) for x in logits))
        return {tid: x / t - norm for tid, x in zip(ids, logits)}

    # -- prompt construction ----------------------------------------------------------------------------
    def prompt(self, body: dict[str, Any]) -> list[int]:
        msgs, tools = body.get("messages") or [], body.get("tools")
        if "ignore-reasoning-field" in self.defects:  # a server that only knows the pre-0.16 field name
            msgs = [{k: v for k, v in m.items() if k != "reasoning"} for m in msgs]
        kw = body.get("chat_template_kwargs") or {}
        if "system-as-user" in self.defects and not any(m.get("role") == "user" for m in msgs):
            # a template that needs a user turn, patched by turning the system message into one
            msgs = [{**m, "role": "user"} if m.get("role") == "system" else m for m in msgs]
        template = self.ref.render(msgs, tools=tools, add_generation_prompt=True, **kw)
        if self.mode == "retokenize":
            return template
        carriers = [i for i, m in enumerate(msgs) if m.get("prompt_token_ids") is not None]
        if not self.defects & {"empty-prefix-wins", "empty-prefix-garbage"}:
            carriers = [i for i in carriers if msgs[i]["prompt_token_ids"]]  # empty lists: nothing to splice there
        explicit = body.get("required_prefix_token_ids")
        if explicit is None and not carriers:
            return template
        carrier = (carriers[0] if "first-carrier" in self.defects else carriers[-1]) if carriers else len(msgs) - 1
        prefix = explicit if explicit is not None else \
            msgs[carrier]["prompt_token_ids"] + msgs[carrier]["generation_token_ids"]
        if not prefix:
            if "empty-prefix-garbage" not in self.defects:
                return template  # documented fallback: nothing to splice
        assistants = [i for i, m in enumerate(msgs) if m.get("role") == "assistant"]
        # boundary from the message that carries the prefix (§7.9); the defect takes the last assistant instead
        boundary = assistants[-1] if "boundary-last-assistant" in self.defects else carrier
        tp = self.ref.render(msgs[:boundary + 1], tools=tools, add_generation_prompt=False, **kw)
        served = splice(prefix or [self.ref.eos], tp, template, self.ref.eos)[0 if prefix else 1:]
        n = len(prefix)
        if "double-eos" in self.defects:
            served = served[:n] + [self.ref.eos] + served[n:]
        if "drop-separator" in self.defects:
            served = served[:n] + served[n + 1:]
        return served

    # -- HTTP --------------------------------------------------------------------------------------------
    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body = json.loads(request.content or b"null")
        self.requests.append({"path": path, "body": body})
        if "5xx" in self.defects:
            return httpx.Response(503, json={"error": {"message": "overloaded"}})
        if path.endswith("/models"):
            if "models-404" in self.defects:
                return httpx.Response(404, text="not found")
            listed = "/weights/fake" if "models-id-unusable" in self.defects else "fake"
            return httpx.Response(200, json={"object": "list", "data": [{"id": listed, "object": "model",
                                                                         "max_model_len": MAX_MODEL_LEN}]})
        if path == "/tokenize":
            return self.tokenize(body)
        if path.endswith("/completions") and not path.endswith("/chat/completions"):
            return self.completions(body)
        if "malformed" in self.defects:
            return httpx.Response(200, text="<html>upstream proxy error</html>")
        return self.chat(body)

    def tokenize(self, body: dict[str, Any]) -> httpx.Response:
        if "tokenize-404" in self.defects:
            return httpx.Response(404, json={"detail": "Not Found"})
        tokens = self.ref.render(body["messages"], tools=body.get("tools"),
                                 **(body.get("chat_template_kwargs") or {})) \
            if "tokenize-unspliced" in self.defects else self.prompt(body)
        if "tokenize-shape" in self.defects:
            return httpx.Response(200, json={"ids": tokens})
        return httpx.Response(200, json={"count": len(tokens), "max_model_len": MAX_MODEL_LEN, "tokens": tokens,
                                         "token_strs": None})

    def edited(self, msgs: list[dict[str, Any]]) -> bool:
        """An assistant message whose text is not what its carried ids decode to (P20). Think blocks are taken
        out of both sides, as Gym takes them out of the text wherever they sit; with the ``false-refusal``
        defect only out of the message (the reference before issue 14)."""
        for m in msgs:
            text = m.get("content")
            if not (m.get("generation_token_ids") and isinstance(text, str)):
                continue
            text = _THINK.sub("", text).strip()
            ids = m["generation_token_ids"]
            decoded = [self.ref.decode(ids), self.ref.decode(ids, skip_special_tokens=True)]
            if "false-refusal" not in self.defects:
                decoded = [_THINK.sub("", d) for d in decoded]
            if text and not any(text in d for d in decoded):
                return True
        return False

    def completions(self, body: dict[str, Any]) -> httpx.Response:
        ids = body["prompt"]
        rows: list[Any] = [None]
        first = self.first_position(1.0)
        for i, tid in enumerate(ids[1:], start=1):
            # a token right after the generation prompt gets the first-position distribution
            is_first = ids[i - 1:i] == self.ref.encode("\n")[-1:] and tid in first
            lp = first[tid] if is_first else token_lp(tid)
            rows.append({str(tid): {"logprob": lp - (1.0 if "rescore-mismatch" in self.defects else 0.0), "rank": 1}})
        return httpx.Response(200, json={"choices": [{"index": 0, "text": "", "prompt_logprobs": rows}]})

    def chat(self, body: dict[str, Any]) -> httpx.Response:
        msgs = body.get("messages") or []
        if not isinstance(msgs, list):
            if "error-detail" in self.defects:  # FastAPI's default shape
                return httpx.Response(422, json={"detail": [{"loc": ["body", "messages"], "msg": "not a list"}]})
            return httpx.Response(400, json={"error": {"message": "messages must be a list", "type": "BadRequestError",
                                                       "code": 400}})
        if "models-id-unusable" in self.defects and body.get("model") == "/weights/fake":
            return httpx.Response(404, json={"error": {"message": "The model `/weights/fake` does not exist."}})
        if "reject-model-only-ids" in self.defects and any(
                t >= len(self.ref.tok) for m in msgs for t in (m.get("generation_token_ids") or [])):
            return httpx.Response(400, json={"error": {"message": "Token id is out of vocabulary", "code": 400}})
        if "reject-n" in self.defects and "n" in body:
            return httpx.Response(400, json={"error": {"message": "n is not supported"}})
        if "reject-token-fields" in self.defects and any("prompt_token_ids" in m for m in msgs):
            return httpx.Response(400, json={"error": {"message": "extra fields not permitted"}})
        if "no-token-fields" in self.defects and any(not m.get("prompt_token_ids") and m.get("role") == "assistant"
                                                     for m in msgs):
            return httpx.Response(400, json={"error": {"message": "assistant without token ids"}})
        if "splice-edited-history" not in self.defects and self.edited(msgs):
            return httpx.Response(400, json={"error": {"message": "non-monotonic history: an assistant message was "
                                                                  "edited after generation"}})
        prompt = self.prompt(body)
        if len(prompt) >= MAX_MODEL_LEN:
            code = 500 if "overflow-500" in self.defects else 400
            return httpx.Response(code, json={"error": {"message": f"This model's maximum context length is "
                                                                   f"{MAX_MODEL_LEN} tokens", "code": code}})
        if "max-tokens-rejected" in self.defects and len(prompt) + (body.get("max_tokens") or 0) > MAX_MODEL_LEN:
            return httpx.Response(400, json={"error": {"message": "max_tokens is too large for the prompt"}})
        if "bos" in self.defects:
            prompt = [self.ref.eos + 1] + prompt
        temperature = float(body.get("temperature") or 1.0)
        dist = self.first_position(temperature)
        gen = self.ref.encode(self.reply) + ([] if "no-eos" in self.defects else [self.ref.eos])
        max_tokens = body.get("max_tokens") or 10**6
        finish = "length" if max_tokens < len(gen) else "stop"
        gen = gen[:max_tokens]
        lps = [dist[gen[0]]] + [token_lp(t) for t in gen[1:]]
        if "logprobs-shifted" in self.defects:
            lps = [lps[0], *lps[:-1]]
        if "generation-config-fallback" in self.defects and ("top_p" not in body or body.get("top_k") not in (None, -1)):
            lps = [min(0.0, x + 0.5) for x in lps]  # sampled from a truncated, renormalised distribution
        message: dict[str, Any] = {"role": "assistant", "content": self.ref.decode([t for t in gen if t != self.ref.eos])}
        choice_tool = body.get("tool_choice")
        if isinstance(choice_tool, dict):
            name = choice_tool["function"]["name"]
            args: Any = {"c": "a"} if "tool-shape" in self.defects else json.dumps({"c": "a"})
            message.update(content=None, tool_calls=[{"id": "" if "tool-shape" in self.defects else "call_1",
                                                      "type": "function", "function": {"name": name, "arguments": args}}])
        top_n = body.get("top_logprobs")
        entries = []
        for i, (tid, lp) in enumerate(zip(gen, lps)):
            token = str(tid) if "no-token-id-strings" in self.defects else f"token_id:{tid}"
            tops = [{"token": f"token_id:{t}", "logprob": v} for t, v in list(dist.items())[:top_n]] \
                if (i == 0 and top_n) else []
            entries.append({"token": token, "logprob": lp, "top_logprobs": tops})
        logprobs = None if (top_n is None and "top-logprobs-null-empty" in self.defects) else {"content": entries}
        if "length-mismatch" in self.defects:
            lps = lps[:-1]
        choice: dict[str, Any] = {"index": 0, "message": message, "logprobs": logprobs,
                                  "finish_reason": "done" if "bad-finish" in self.defects else finish}
        out: dict[str, Any] = {"id": "chatcmpl-fake", "object": "chat.completion", "model": "fake", "choices": [choice],
                               "usage": {"prompt_tokens": len(prompt) + ("usage-wrong" in self.defects),
                                         "completion_tokens": len(gen), "total_tokens": len(prompt) + len(gen)}}
        if self.mode != "inline-only":
            message.update(prompt_token_ids=prompt, generation_token_ids=gen, generation_log_probs=lps)
            if "partial-bundle" in self.defects:
                del message["generation_log_probs"]
        if body.get("return_token_ids"):
            out["prompt_token_ids"] = prompt
            choice["token_ids"] = gen + [1] if "source-disagree" in self.defects else gen
        return httpx.Response(200, json=out)


class _ASGI:
    """Adapts the sync handler to ASGI so uvicorn can serve it; ``slow`` delays chat replies."""

    def __init__(self, fake: FakeEndpoint, slow_s: float = 0.0) -> None:
        self.fake, self.slow_s = fake, slow_s

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            event = await receive()
            chunks.append(event.get("body", b""))
            if not event.get("more_body"):
                break
        url = f"http://fake{scope['path']}"
        request = httpx.Request(scope["method"], url, content=b"".join(chunks))
        if self.slow_s and scope["path"].endswith("/chat/completions"):
            await asyncio.sleep(self.slow_s)
        resp = self.fake.handler(request)
        await send({"type": "http.response.start", "status": resp.status_code,
                    "headers": [(b"content-type", resp.headers.get("content-type", "application/json").encode())]})
        await send({"type": "http.response.body", "body": resp.content})


@contextlib.contextmanager
def serve(fake: FakeEndpoint, *, slow_s: float = 0.0) -> Iterator[str]:
    """Run ``fake`` on a free local port; yields the base URL ending in ``/v1``."""
    import uvicorn

    from conformance._process import free_port
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_ASGI(fake, slow_s), host="127.0.0.1", port=port, log_level="error",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
