"""OpenAI response bodies with the token bundle (contract §4, §8.1): pure functions over ids and numbers.

One chat call reports the same ids three ways -- the message-level bundle Gym reads first,
vLLM-native ``prompt_token_ids`` / ``choices[0].token_ids``, and ``token_id:N`` logprob tokens --
all built here from the same two lists, so they agree by construction (E5).
"""
from __future__ import annotations

import math
import time
import uuid
from typing import Any

from .engines.base import GenerateResult, TopList
from .parsing import ParsedOutput

LOGPROB_FLOOR = -9999.0  # NeMo RL's VLLM_LOGPROB_FLOOR (contract §8.3)


def floor_logprob(x: float | None) -> float:
    """Finite, <= 0, never NaN: -inf and NaN become the floor (contract §8.3, E4, R12)."""
    if x is None or math.isnan(x) or x < LOGPROB_FLOOR:
        return LOGPROB_FLOOR
    return min(float(x), 0.0)


class TokenText:
    """Per-id token strings and bytes, cached: logprob entries are built for every generated token."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._cache: dict[int, tuple[str, list[int]]] = {}

    def text(self, tid: int) -> tuple[str, list[int]]:
        hit = self._cache.get(tid)
        if hit is None:
            s = self.tokenizer.decode([tid])
            # A partial UTF-8 token decodes to U+FFFD; report it like vLLM does (docs/cpu-environment.md trap 6).
            hit = ("", []) if "\ufffd" in s else (s, list(s.encode("utf-8")))
            self._cache[tid] = hit
        return hit

    def label(self, tid: int, as_id: bool) -> str:
        return f"token_id:{tid}" if as_id else self.text(tid)[0]


def usage(prompt_len: int, completion_len: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_len, "completion_tokens": completion_len,
            "total_tokens": prompt_len + completion_len}


def chat_logprobs(tt: TokenText, ids: list[int], lps: list[float], tops: list[TopList] | None,
                  as_id: bool) -> dict[str, Any]:
    content = []
    for i, (tid, lp) in enumerate(zip(ids, lps)):
        alts = tops[i] if tops is not None else []
        content.append({
            "token": tt.label(tid, as_id), "logprob": floor_logprob(lp), "bytes": tt.text(tid)[1],
            "top_logprobs": [{"token": tt.label(a, as_id), "logprob": floor_logprob(alp), "bytes": tt.text(a)[1]}
                             for a, alp in alts]})
    return {"content": content}


def chat_response(*, model: str, prompt_ids: list[int], result: GenerateResult, parsed: ParsedOutput,
                  tt: TokenText, with_reasoning_fields: bool, logprobs: bool, as_id: bool,
                  return_token_ids: bool) -> dict[str, Any]:
    gen = list(result.token_ids)
    message: dict[str, Any] = {"role": "assistant", "content": parsed.content, "tool_calls": parsed.tool_calls}
    if with_reasoning_fields:  # E12: reasoning fields only when a reasoning parser is configured
        message["reasoning_content"] = message["reasoning"] = parsed.reasoning
    if logprobs:  # contract §8.1: the message-level bundle, the source Gym reads first (§4.1)
        message["prompt_token_ids"] = list(prompt_ids)
        message["generation_token_ids"] = gen
        message["generation_log_probs"] = [floor_logprob(x) for x in result.logprobs]
    if result.finish_reason == "length":
        finish = "length"
    else:
        finish = "tool_calls" if parsed.tool_calls else "stop"
    choice: dict[str, Any] = {
        "index": 0, "message": message, "finish_reason": finish, "stop_reason": None,
        "logprobs": chat_logprobs(tt, gen, result.logprobs, result.top_logprobs, as_id) if logprobs else None}
    body: dict[str, Any] = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
                            "created": int(time.time()), "model": model, "choices": [choice]}
    if return_token_ids:
        choice["token_ids"] = gen
        body["prompt_token_ids"] = list(prompt_ids)
    body["usage"] = usage(len(prompt_ids), len(gen))
    return body


def _prompt_logprob_entries(tt: TokenText, prompt: list[int], result: GenerateResult) -> list[dict | None]:
    out: list[dict | None] = [None]
    for i in range(1, len(prompt)):
        entry = {str(prompt[i]): {"logprob": floor_logprob(result.prompt_logprobs[i]), "rank": None,
                                  "decoded_token": tt.text(prompt[i])[0]}}
        for tid, lp in result.prompt_top_logprobs[i] or []:
            entry.setdefault(str(tid), {"logprob": floor_logprob(lp), "rank": None,
                                        "decoded_token": tt.text(tid)[0]})
        out.append(entry)
    return out


def completion_response(*, model: str, prompt_ids: list[int], prompt_text: str, result: GenerateResult,
                        gen_ids: list[int], text: str, tt: TokenText, echo: bool, logprobs: int | None,
                        prompt_logprobs: int | None, as_id: bool, return_token_ids: bool) -> dict[str, Any]:
    """vLLM's ``/v1/completions`` shape; with ``echo`` the logprob arrays cover prompt then generation."""
    choice: dict[str, Any] = {"index": 0, "text": (prompt_text if echo else "") + text,
                              "finish_reason": result.finish_reason, "stop_reason": None, "logprobs": None}
    gen_lps = result.logprobs[:len(gen_ids)]
    if logprobs is not None:
        ids, lps, tops = list(gen_ids), [floor_logprob(x) for x in gen_lps], \
            list((result.top_logprobs or [[] for _ in gen_ids])[:len(gen_ids)])
        if echo:
            ids = list(prompt_ids) + ids
            lps = [None if x is None else floor_logprob(x) for x in result.prompt_logprobs] + lps
            tops = list(result.prompt_top_logprobs) + tops
        offsets, pos = [], 0
        for tid in ids:
            offsets.append(pos)
            pos += len(tt.text(tid)[0])
        choice["logprobs"] = {
            "tokens": [tt.label(t, as_id) for t in ids], "token_logprobs": lps,
            "top_logprobs": [None if top is None else {tt.label(a, as_id): floor_logprob(lp) for a, lp in top[:logprobs]}
                             for top in tops],
            "text_offset": offsets}
    if prompt_logprobs is not None:
        choice["prompt_logprobs"] = _prompt_logprob_entries(tt, prompt_ids, result)
    if return_token_ids:
        choice["prompt_token_ids"] = list(prompt_ids)
        choice["token_ids"] = list(gen_ids)
    return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
            "model": model, "choices": [choice], "usage": usage(len(prompt_ids), len(gen_ids))}
