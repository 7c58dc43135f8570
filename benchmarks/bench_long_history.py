"""The reference server's own per-request cost as a Gym rollout grows, beside stock vLLM's request time.

    .venv/bin/python benchmarks/bench_long_history.py [--model tiny-qwen3] [--sessions 2] [--repeats 5]

The on-policy correction re-renders the whole conversation with the chat template (twice: the request and the
history through the last assistant turn), re-tokenizes it and splices the carried ids in on every call, so its
cost grows with the history. This measures it from the reference server's own ``Server-Timing`` header: the
``server`` part (request time less the time awaiting the engine) is the overhead, and ``server-cpu`` the CPU time
the serving thread spent on it (on a shared 2-core machine with four vLLM processes polling, the wall time also
holds the waits for a core).

Both servers run the same model and flags (vllm engine, fp32, eager, processed logprobs, qwen3 reasoning and
hermes tool parsers, ``--max-model-len 4096``). Each session grows turn by turn the way NeMo Gym drives it (the
harness's Gym-faithful ``Rollout``: a user message, a sampled reply of at most 16 tokens carried back with its
token bundle, reasoning as Gym returns it), until the next turn would not fit the context. At turns 1, 2, 4, ...,
64 and the last that fits, the same training body goes to both servers: one untimed call each (so both have the
prompt in their prefix cache, as the previous turn leaves it in a real rollout), then ``--repeats`` timed pairs,
reference and stock alternating which goes first. Prints medians as a Markdown table and the two verdicts of
the long-history issue: the overhead grows at most linearly with the history, and stays under 5 % of stock
vLLM's request time at 32 turns.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from conformance._process import ServerProcess, free_port, vllm_server_argv  # noqa: E402
from conformance.client import GymClient, Rollout  # noqa: E402
from fixtures import fixture_path  # noqa: E402

from bench_server_throughput import KV_BYTES, TOOLS  # noqa: E402  (the same servers and tool as the throughput bench)
CHECKPOINTS = (1, 2, 4, 8, 16, 32, 64)
MARGIN = 32  # tokens: a turn may grow a little more than the largest growth seen so far
# Stock vLLM closes a connection idle for 5 s; the rollout grows for longer than that between two checkpoints, and a
# request sent as the server closes fails (httpx.ReadError). Both servers keep connections 60 s (the reference's own).
KEEP_ALIVE = {"VLLM_HTTP_TIMEOUT_KEEP_ALIVE": "60"}
TIMING = re.compile(r"engine;dur=([\d.]+), server;dur=([\d.]+), server-cpu;dur=([\d.]+)")
QUESTIONS = ["What should I pack for the next leg of the trip?", "Is it worth taking the train instead of flying?",
             "Which museum would you visit first, and why?", "How early should I be at the station tomorrow?",
             "Can you suggest a restaurant near the old town square?", "What is the weather likely to do later?"]


def user_text(session: int, turn: int) -> str:
    return f"Session {session}, turn {turn}: {QUESTIONS[(session + turn) % len(QUESTIONS)]}"


async def timed_post(http: httpx.AsyncClient, content: bytes) -> tuple[float, dict, httpx.Response]:
    """(seconds for the whole exchange, body, response); the request body is serialised beforehand."""
    t0 = time.perf_counter()
    r = await http.post("/v1/chat/completions", content=content, headers={"content-type": "application/json"})
    seconds = time.perf_counter() - t0
    r.raise_for_status()
    return seconds, r.json(), r


async def measure(ref: httpx.AsyncClient, stock: httpx.AsyncClient, body: dict, repeats: int, first: int) -> dict:
    content = json.dumps(body).encode()
    rows_body = [len(content)]
    await timed_post(ref, content)  # untimed: the prompt into both prefix caches
    await timed_post(stock, content)
    rows: dict[str, list] = {"ref_ms": [], "engine_ms": [], "overhead_ms": [], "cpu_ms": [], "stock_ms": [],
                             "prompt": [], "ref_gen": [], "stock_gen": [], "stock_prompt": [], "body": rows_body}
    for rep in range(repeats):
        order = ("ref", "stock") if (rep + first) % 2 == 0 else ("stock", "ref")
        for name in order:
            seconds, data, r = await timed_post(ref if name == "ref" else stock, content)
            if name == "ref":
                m = TIMING.fullmatch(r.headers.get("server-timing", ""))
                if m is None:
                    raise SystemExit(f"the reference server sent no Server-Timing header: {dict(r.headers)}")
                rows["ref_ms"].append(seconds * 1000)
                rows["engine_ms"].append(float(m[1]))
                rows["overhead_ms"].append(float(m[2]))
                rows["cpu_ms"].append(float(m[3]))
                rows["prompt"].append(data["usage"]["prompt_tokens"])
                rows["ref_gen"].append(data["usage"]["completion_tokens"])
            else:
                rows["stock_ms"].append(seconds * 1000)
                rows["stock_prompt"].append(data["usage"]["prompt_tokens"])
                rows["stock_gen"].append(data["usage"]["completion_tokens"])
    return rows


async def session(ref_url: str, stock_url: str, index: int, *, max_model_len: int, max_tokens: int,
                  repeats: int, results: dict[int, dict]) -> int:
    """Grow one rollout to the context length; measure at the checkpoints. Returns the last turn reached."""
    gym = GymClient(ref_url + "/v1", model="tiny", timeout=600)
    rollout = Rollout(gym, tools=TOOLS, max_tokens=max_tokens, top_k=-1)  # top_k: stock would take 20 (P25)
    rollout.system("You are a helpful travel assistant.")
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with gym, httpx.AsyncClient(base_url=ref_url, timeout=600, limits=limits) as ref, \
            httpx.AsyncClient(base_url=stock_url, timeout=600, limits=limits) as stock:
        turn, prompt_len, growth = 0, 0, 0
        while True:
            turn += 1
            rollout.user(user_text(index, turn))
            body = await gym.body(rollout.messages(), tools=TOOLS, max_tokens=max_tokens, top_k=-1)
            if turn in CHECKPOINTS:
                add(results, turn, await measure(ref, stock, body, repeats, first=index + turn))
            step = await rollout.generate()
            for call in step.call.message.get("tool_calls") or []:  # a random model may emit one: answer it
                rollout.tool_output(call["id"], '{"temp_c": 14, "sky": "rain"}')
            new_len = len(step.bundle.prompt_token_ids)
            if turn > 1:  # a turn's growth: the previous reply and this user message
                growth = max(growth, new_len - prompt_len)
            prompt_len = new_len
            if turn > 1 and prompt_len + growth + max_tokens + MARGIN > max_model_len:
                break  # the next turn would not fit: this one is the longest
        if turn not in CHECKPOINTS:  # the longest turn, measured at (nearly) the full context
            add(results, -1, await measure(ref, stock, body, repeats, first=index))
            results[-1].setdefault("turns", []).append(turn)
        return turn


def add(results: dict[int, dict], turn: int, rows: dict[str, list]) -> None:
    for key, values in rows.items():
        results.setdefault(turn, {}).setdefault(key, []).extend(values)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def table(results: dict[int, dict]) -> tuple[str, list[dict]]:
    lines = ["| turns | prompt tokens | request body (KB) | reference overhead (ms) | overhead per 1k prompt tokens (ms) | "
             "of which CPU (ms) | reference engine (ms) | reference request (ms) | stock request (ms) | "
             "overhead / stock request | overhead CPU / stock request |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    summary = []
    for turn in [t for t in CHECKPOINTS if t in results] + ([-1] if -1 in results else []):
        r = results[turn]
        label = str(turn) if turn > 0 else f"{min(r['turns'])}–{max(r['turns'])} (context)" \
            if min(r["turns"]) != max(r["turns"]) else f"{r['turns'][0]} (context)"
        prompt, overhead, stock = median(r["prompt"]), median(r["overhead_ms"]), median(r["stock_ms"])
        cpu = median(r["cpu_ms"])
        row = {"turns": turn, "label": label, "prompt": prompt, "overhead": overhead, "per_k": overhead / prompt * 1000,
               "cpu": cpu, "cpu_per_k": cpu / prompt * 1000, "engine": median(r["engine_ms"]),
               "ref": median(r["ref_ms"]), "stock": stock, "share": overhead / stock, "cpu_share": cpu / stock,
               "body_kb": median(r["body"]) / 1000}
        summary.append(row)
        lines.append(f"| {label} | {prompt:.0f} | {row['body_kb']:.0f} | {overhead:.2f} | {row['per_k']:.2f} | {cpu:.2f} | "
                     f"{row['engine']:.1f} | {row['ref']:.1f} | {stock:.1f} | {row['share'] * 100:.1f} % | "
                     f"{row['cpu_share'] * 100:.1f} % |")
    return "\n".join(lines), summary


def verdicts(summary: list[dict]) -> list[str]:
    """At most linear: overhead ~ tokens^k with k <= 1.15 from 8 turns to the longest, and the overhead per 1k prompt
    tokens there no more than 10 % above its lowest from 8 turns on. Judged on the wall time (what a client waits)
    and, apart, on the CPU time (the work itself, without the waits for a core a shared machine adds)."""
    out = []
    long = [r for r in summary if r["turns"] == -1 or r["turns"] >= 8]
    if len(long) >= 2:
        a, b = long[0], long[-1]
        for what, key, per_k in (("wall", "overhead", "per_k"), ("CPU", "cpu", "cpu_per_k")):
            slope = math.log(b[key] / a[key]) / math.log(b["prompt"] / a["prompt"])
            linear = slope <= 1.15 and b[per_k] <= 1.1 * min(r[per_k] for r in long)
            out.append(f"growth ({what}): overhead ~ prompt_tokens^{slope:.2f} from {a['label']} to {b['label']} turns "
                       f"({a['prompt']:.0f} -> {b['prompt']:.0f} tokens); per 1k tokens {a[per_k]:.2f} -> "
                       f"{b[per_k]:.2f} ms: " + ("at most linear (PASS)" if linear else "faster than linear (FAIL)"))
        # Gym resends every earlier prompt with its assistant message, so the body grows with the square of the turns;
        # the server must read all of it: judged against what it is sent, its work is
        body_slope = math.log(b["cpu"] / a["cpu"]) / math.log(b["body_kb"] / a["body_kb"])
        out.append(f"growth (CPU) against the request body Gym sends ({a['body_kb']:.0f} -> {b['body_kb']:.0f} KB): "
                   f"overhead ~ body^{body_slope:.2f}: " + ("at most linear (PASS)" if body_slope <= 1.0
                                                           else "faster than linear (FAIL)"))
    at32 = next((r for r in summary if r["turns"] == 32), None)
    if at32 is not None:
        for what, key, share in (("wall", "overhead", "share"), ("CPU", "cpu", "cpu_share")):
            out.append(f"at 32 turns ({what}): overhead {at32[key]:.2f} ms = {at32[share] * 100:.1f} % of stock vLLM's "
                       f"request time {at32['stock']:.1f} ms: " + ("under 5 % (PASS)" if at32[share] < 0.05
                                                                   else "not under 5 % (FAIL)"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny-qwen3", help="fixture name")
    ap.add_argument("--sessions", type=int, default=2, help="rollouts grown one after the other")
    ap.add_argument("--repeats", type=int, default=5, help="timed reference/stock pairs per checkpoint and session")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--max-model-len", type=int, default=4096)
    args = ap.parse_args()
    model = fixture_path(args.model)
    parsers = ["--reasoning-parser", "qwen3"]
    ref_port, stock_port = free_port(), free_port()
    ref_argv = [sys.executable, "-m", "gym_conformance", "serve", "--model", str(model), "--engine", "vllm",
                "--served-model-name", "tiny", "--port", str(ref_port), "--max-model-len", str(args.max_model_len),
                *parsers, "--tool-parser", "hermes"]
    stock_argv = vllm_server_argv(model, stock_port, max_model_len=args.max_model_len,
                                  extra=[*parsers, "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
                                         "--logprobs-mode", "processed_logprobs", "--kv-cache-memory-bytes",
                                         KV_BYTES])
    logs = Path("reports/servers"); logs.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results: dict[int, dict] = {}
    with ServerProcess(ref_argv, ref_port, timeout=900, log_path=logs / "bench-long-reference.log") as ref, \
            ServerProcess(stock_argv, stock_port, timeout=900, log_path=logs / "bench-long-stock.log",
                          env=KEEP_ALIVE) as stock:
        print(f"servers up in {time.perf_counter() - t0:.0f}s", flush=True)
        for i in range(args.sessions):
            t1 = time.perf_counter()
            last = asyncio.run(session(ref.url, stock.url, i, max_model_len=args.max_model_len,
                                       max_tokens=args.max_tokens, repeats=args.repeats, results=results))
            print(f"session {i}: {last} turns in {time.perf_counter() - t1:.0f}s", flush=True)
    text, summary = table(results)
    gens = [(median(r["ref_gen"]), median(r["stock_gen"])) for r in results.values()]
    print(f"\nmodel {args.model}, --max-model-len {args.max_model_len}, {args.sessions} sessions, "
          f"{args.repeats} timed pairs per checkpoint and session (medians), max_tokens {args.max_tokens} "
          f"(median completion tokens per checkpoint, reference/stock: "
          f"{', '.join(f'{a:.0f}/{b:.0f}' for a, b in gens)})\n")
    print(text)
    print()
    for line in verdicts(summary):
        print(line)
    print(f"\ntotal {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
