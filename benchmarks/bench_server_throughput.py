"""Throughput of the reference server (vllm engine) relative to stock vLLM's OpenAI server, side by side.

    .venv/bin/python benchmarks/bench_server_throughput.py [--model tiny-qwen3] [--sessions 32] [--rounds 2]

Same model, same flags (fp32, eager, processed logprobs, qwen3 reasoning + hermes tool parsers,
same KV-cache size), same Gym-like workload: concurrent sessions, each starting from a history with
tools and a tool-call exchange, then 2-4 sampled turns with Gym's training body; every assistant
message goes back with its token bundle (stock vLLM ignores those fields). Rounds alternate
reference / stock to spread the noise of a shared 2-core machine. Prints completion tokens/s per
server and the ratio reference / stock (target >= 0.95, issue 3).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from conformance._process import ServerProcess, free_port, vllm_server_argv  # noqa: E402
from fixtures import fixture_path  # noqa: E402

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.",
                                           "parameters": {"type": "object", "properties": {
                                               "city": {"type": "string"}}, "required": ["city"]}}}]
KV_BYTES = str(2**30)


def history(i: int) -> list[dict]:
    return [{"role": "system", "content": "You are a helpful travel assistant."},
            {"role": "user", "content": f"Session {i}: I am flying to Paris tomorrow. What should I pack?"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "call_0", "type": "function", "function": {
                "name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
            {"role": "tool", "tool_call_id": "call_0", "content": '{"temp_c": 14, "sky": "rain"}'}]


async def session(client: httpx.AsyncClient, i: int, turns: int, max_tokens: int, stats: dict) -> None:
    msgs = history(i)
    body = {"model": "tiny", "tools": TOOLS, "tool_choice": "auto", "logprobs": True, "top_logprobs": 0,
            "return_tokens_as_token_ids": True, "temperature": 1.0, "top_p": 1.0, "max_tokens": max_tokens,
            # explicit: stock vLLM would otherwise take top_k=20 from generation_config.json (P25)
            "top_k": -1}
    for turn in range(turns):
        r = await client.post("/v1/chat/completions", json={**body, "messages": msgs})
        r.raise_for_status()
        data = r.json()
        msg = data["choices"][0]["message"]
        stats["tokens"] += data["usage"]["completion_tokens"]
        stats["prompt_tokens"] += data["usage"]["prompt_tokens"]
        stats["requests"] += 1
        carried = {k: msg[k] for k in ("role", "content", "reasoning_content", "prompt_token_ids",
                                       "generation_token_ids", "generation_log_probs") if msg.get(k) is not None}
        msgs += [carried, {"role": "user", "content": f"Follow-up {turn}: and for the day after?"}]


async def workload(url: str, sessions: int, max_tokens: int, seed: int) -> dict:
    rng = random.Random(seed)
    plan = [rng.randint(2, 4) for _ in range(sessions)]
    stats = {"tokens": 0, "prompt_tokens": 0, "requests": 0}
    limits = httpx.Limits(max_connections=sessions, max_keepalive_connections=sessions)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(session(client, i, n, max_tokens, stats) for i, n in enumerate(plan)))
        stats["seconds"] = time.perf_counter() - t0
    stats["tok_per_s"] = stats["tokens"] / stats["seconds"]
    stats["req_per_s"] = stats["requests"] / stats["seconds"]
    return stats


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(CPU s of the HTTP process itself, CPU s of its children: engine core, workers)."""
    import psutil

    proc = psutil.Process(pid)
    own = sum(proc.cpu_times()[:2])
    kids = 0.0
    for child in proc.children(recursive=True):
        try:
            kids += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return own, kids


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny-qwen3", help="fixture name")
    ap.add_argument("--sessions", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    model = fixture_path(args.model)
    parsers = ["--reasoning-parser", "qwen3"]
    ref_port, stock_port = free_port(), free_port()
    ref_argv = [sys.executable, "-m", "gym_conformance", "serve", "--model", str(model), "--engine", "vllm",
                "--served-model-name", "tiny", "--port", str(ref_port), "--max-model-len", "1024", *parsers,
                "--tool-parser", "hermes"]
    stock_argv = vllm_server_argv(model, stock_port, extra=[*parsers, "--enable-auto-tool-choice",
                                                            "--tool-call-parser", "hermes", "--logprobs-mode",
                                                            "processed_logprobs", "--kv-cache-memory-bytes", KV_BYTES])
    logs = Path("reports/servers"); logs.mkdir(parents=True, exist_ok=True)
    with ServerProcess(ref_argv, ref_port, timeout=300, log_path=logs / "bench-reference.log") as ref, \
            ServerProcess(stock_argv, stock_port, timeout=300, log_path=logs / "bench-stock.log") as stock:
        asyncio.run(workload(ref.url, 4, 8, 0))  # warm-up both (first-request costs)
        asyncio.run(workload(stock.url, 4, 8, 0))
        results = {"reference": [], "stock": []}
        for rnd in range(args.rounds):
            for name, srv in (("reference", ref), ("stock", stock)) if rnd % 2 == 0 else (("stock", stock), ("reference", ref)):
                before = cpu_seconds(srv.proc.pid)
                s = asyncio.run(workload(srv.url, args.sessions, args.max_tokens, seed=rnd))
                after = cpu_seconds(srv.proc.pid)
                results[name].append(s["tok_per_s"])
                http_ms, engine_ms = ((a - b) * 1000 / s["requests"] for a, b in zip(after, before))
                print(f"round {rnd} {name:9s}: {s['requests']} requests, {s['tokens']} tokens in "
                      f"{s['seconds']:.1f}s = {s['tok_per_s']:.0f} tok/s, {s['req_per_s']:.2f} req/s, "
                      f"{s['prompt_tokens'] / s['requests']:.0f} prompt tokens/request; CPU per "
                      f"request: HTTP process {http_ms:.1f} ms, engine {engine_ms:.1f} ms", flush=True)
    ref_tps, stock_tps = statistics.mean(results["reference"]), statistics.mean(results["stock"])
    # Each round runs both servers back to back: the per-round ratio cancels slow drifts in the load
    # other processes put on the machine; the median discards a round that one burst hit.
    pair = statistics.median(r / s for r, s in zip(results["reference"], results["stock"]))
    print(f"model {args.model}, {args.sessions} concurrent sessions, 2-4 turns, max_tokens {args.max_tokens}")
    print(f"reference {ref_tps:.0f} tok/s, stock vLLM {stock_tps:.0f} tok/s; ratio of means {ref_tps / stock_tps:.3f}, "
          f"median per-round ratio {pair:.3f} (target >= 0.95)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
