"""Benchmark of the conformance suite on this machine.

    python benchmarks/bench_conformance.py [--reference URL] [--stock URL] [--seeds 5]

1. MUST-tier wall time against the reference server (tiny-qwen3), and the fraction of it spent in the
   harness's own code rather than awaiting the server (target: <= 60 s, <= 5 %).
2. Drift search against stock vLLM: hypothesis examples until the first continuity failure, median over
   seeds (target: <= 20). Shrinking is switched off here: only the search is measured.
Servers not given by URL are started (and stopped) by the script. Results go to stdout as JSON and to
reports/bench_conformance.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hypothesis import Phase, settings  # noqa: E402

from conformance._process import ServerProcess, free_port, vllm_server_argv  # noqa: E402
from conformance.checks import CHECKS, Context, Reference, Target, run_check  # noqa: E402
from conformance.client import Runner  # noqa: E402
from conformance.core import CATALOGUE, MUST, CheckFailure, CheckSkipped  # noqa: E402
from conformance.strategies import LIVE_SERVER  # noqa: E402
from fixtures import fixture_path  # noqa: E402


def start(stack: ExitStack, argv_for_port, name: str) -> str:
    port = free_port()
    server = ServerProcess(argv_for_port(port), port, timeout=300,
                           log_path=REPO / "reports" / "servers" / f"bench-{name}.log")
    (REPO / "reports" / "servers").mkdir(parents=True, exist_ok=True)
    stack.enter_context(server)
    return server.url


def must_tier(url: str, ref: Reference, runner: Runner) -> dict:
    ctx = Context(Target(url + "/v1", tokenizer=ref.name), runner, reference=ref)
    _ = ref.splits  # vocabulary scan: one-time setup, reported separately
    outcomes, t0, cpu0 = {}, time.perf_counter(), time.process_time()
    for check_id, variants in CHECKS.items():
        if CATALOGUE[check_id].tier != MUST:
            continue
        for name, _fn in variants:
            try:
                run_check(ctx, check_id, name)
                outcomes[f"{check_id}/{name}"] = "pass"
            except CheckFailure as f:
                outcomes[f"{check_id}/{name}"] = f"fail: {f.verdict[:120]}"
            except CheckSkipped as s:
                outcomes[f"{check_id}/{name}"] = f"skipped: {s}"
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    server = ctx.client.stats.server_s
    runner.run(ctx.client.aclose())
    return {"wall_s": round(wall, 2), "awaiting_server_s": round(server, 2), "harness_s": round(wall - server, 2),
            "harness_fraction": round((wall - server) / wall, 4),
            # CPU burnt by this process (both threads): harness work, excluding time blocked on the server
            "harness_cpu_s": round(cpu, 2), "harness_cpu_fraction": round(cpu / wall, 4),
            "requests": ctx.client.stats.requests,
            "checks": len(outcomes), "failed": {k: v for k, v in outcomes.items() if v.startswith("fail")},
            "skipped": [k for k, v in outcomes.items() if v.startswith("skipped")]}


def drift_examples(url: str, ref: Reference, runner: Runner, seeds: list[int]) -> dict:
    settings.register_profile("bench", max_examples=60, phases=[Phase.generate], **LIVE_SERVER)
    settings.load_profile("bench")
    found = []
    for seed in seeds:
        ctx = Context(Target(url + "/v1", tokenizer=ref.name), runner, reference=ref)
        ctx.hypothesis_seed = seed
        try:
            run_check(ctx, "M1", "drift-search")
        except CheckFailure:
            pass
        found.append(ctx.drift_stats["first_failure"])
        runner.run(ctx.client.aclose())
    hits = [n for n in found if n is not None]
    return {"seeds": seeds, "examples_until_first_failure": found,
            "median": statistics.median(hits) if len(hits) == len(found) else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", help="reference server base URL (without /v1); started if omitted")
    ap.add_argument("--stock", help="stock vLLM base URL (without /v1); started if omitted")
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    model = fixture_path("tiny-qwen3")
    t_setup = time.perf_counter()
    ref = Reference(str(model))
    _ = ref.splits
    setup_s = time.perf_counter() - t_setup
    runner = Runner()
    with ExitStack() as stack:
        reference = args.reference or start(stack, lambda p: [
            sys.executable, "-m", "gym_conformance", "serve", "--model", str(model), "--engine", "vllm",
            "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(p), "--max-model-len", "1024",
            "--reasoning-parser", "qwen3", "--tool-parser", "hermes"], "reference-qwen3")
        stock = args.stock or start(stack, lambda p: vllm_server_argv(model, p, extra=[
            "--reasoning-parser", "qwen3", "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
            "--logprobs-mode", "processed_logprobs"]), "stock-qwen3")
        settings.load_profile("ci") if "ci" in settings._profiles else None
        result = {"setup_s (tokenizer load + vocabulary scan)": round(setup_s, 2),
                  # cold = first run in this process (hypothesis' one-time start-up: gc, AST constant scan,
                  # template compilation); warm = the same tier again
                  "must_tier_vs_reference_cold": must_tier(reference, ref, runner),
                  "must_tier_vs_reference_warm": must_tier(reference, ref, runner),
                  "drift_search_vs_stock_vllm": drift_examples(stock, ref, runner, list(range(1, args.seeds + 1)))}
    runner.close()
    out = REPO / "reports" / "bench_conformance.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
