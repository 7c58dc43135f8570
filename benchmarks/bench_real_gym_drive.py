"""The real NeMo Gym model server in front of the reference server and in front of stock vLLM, side by side.

Same drive as ``tests/gym/test_real_gym.py`` (four-call rollouts, one Gym session each, Gym's own contiguity
rule), on ``tiny-qwen3`` with the qwen3 reasoning and hermes tool parsers, for each verified Gym version. Prints
per endpoint: errors and contiguity violations caused by the endpoint and by the client's Gym version.

    .venv/bin/python benchmarks/bench_real_gym_drive.py [--rollouts 256]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

from conformance._process import ServerProcess, free_port, vllm_server_argv
from fixtures import fixture_path
from tests.conftest import reference_server_argv
from tests.gym._bridge import VERSIONS, GymBridge
from tests.gym._drive import drive, gym_proxy, judge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=256)
    parser.add_argument("--only", choices=["reference", "stock vLLM"], help="drive one endpoint only")
    args = parser.parse_args()
    model = fixture_path("tiny-qwen3")
    endpoints = {
        "reference": lambda port: reference_server_argv(model, port),
        "stock vLLM": lambda port: vllm_server_argv(model, port, extra=[
            "--reasoning-parser", "qwen3", "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
            "--logprobs-mode", "processed_logprobs"]),
    }
    judge_bridge = GymBridge("0.7.0")
    rows = []
    try:
        for name, argv in endpoints.items():
            if args.only and name != args.only:
                continue
            port = free_port()
            with ServerProcess(argv(port), port, timeout=300) as server:
                for version in VERSIONS:
                    proxy = gym_proxy(version, server.url)
                    try:
                        results = asyncio.run(drive(proxy.url, args.rollouts))
                    finally:
                        proxy.stop()
                    outcome = judge(results, version, judge_bridge)
                    rows.append((name, version, outcome))
                    print(f"{name}, Gym {version}: {outcome.summary()}", flush=True)
    finally:
        judge_bridge.close()
    print("\n| endpoint | Gym | rollouts | errors | endpoint-caused violations | client-caused (Gym's own) |")
    print("|---|---|---|---|---|---|")
    for name, version, o in rows:
        rate = len(o.endpoint_breaks) / max(o.rollouts, 1)
        print(f"| {name} | {version} | {o.rollouts} | {sum(o.errors.values())} | {len(o.endpoint_breaks)} "
              f"({rate:.0%}) | {len(o.client_breaks)} |")


if __name__ == "__main__":
    main()
