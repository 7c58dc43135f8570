"""Session-wide fixtures: the offline fixture models and one pool of live servers for the whole run.

Starting a vLLM server costs 25-75 s on these machines, so every server is started at most once per
pytest session, on first use, and shared by every test that asks for it (``server_pool.get``).
Servers log to ``reports/servers/<key>.log`` so a failed start leaves evidence behind.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from conformance._process import ServerProcess, free_port, vllm_server_argv  # noqa: E402
from fixtures import fixture_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SERVER_LOGS = REPO / "reports" / "servers"


class ServerPool:
    """Lazily started, session-scoped servers keyed by name: ``url = pool.get(key, lambda port: argv)``."""

    def __init__(self) -> None:
        self._servers: dict[str, ServerProcess] = {}

    def get(self, key: str, argv_for_port: Callable[[int], list[str]], *, env: dict[str, str] | None = None,
            timeout: float = 300.0) -> str:
        if key not in self._servers:
            port = free_port()
            SERVER_LOGS.mkdir(parents=True, exist_ok=True)
            server = ServerProcess(argv_for_port(port), port, env=env, timeout=timeout,
                                   log_path=SERVER_LOGS / f"{key}.log")
            server.start()
            self._servers[key] = server
        return self._servers[key].url

    def stop_all(self) -> None:
        for server in self._servers.values():
            server.stop()
        self._servers.clear()


@pytest.fixture(scope="session")
def server_pool():
    pool = ServerPool()
    yield pool
    pool.stop_all()


@pytest.fixture(scope="session")
def tiny_chatml_dir() -> Path:
    return fixture_path("tiny-chatml")


@pytest.fixture(scope="session")
def tiny_qwen3_dir() -> Path:
    return fixture_path("tiny-qwen3")


@pytest.fixture(scope="session")
def stock_vllm_qwen3(server_pool, tiny_qwen3_dir) -> str:
    """Stock vLLM's OpenAI server on tiny-qwen3 with the real Qwen3 template and no corrections.

    Configured the way frameworks run it for Gym (reasoning and tool parsers, processed logprobs);
    returns the base URL without ``/v1``.
    """
    return server_pool.get("stock-vllm-qwen3", lambda port: vllm_server_argv(
        tiny_qwen3_dir, port, extra=["--reasoning-parser", "qwen3", "--enable-auto-tool-choice",
                                     "--tool-call-parser", "hermes", "--logprobs-mode", "processed_logprobs"]))


@pytest.fixture(scope="session")
def stock_vllm_chatml(server_pool, tiny_chatml_dir) -> str:
    """Stock vLLM on tiny-chatml (same flags as ``stock_vllm_qwen3``); base URL without ``/v1``."""
    return server_pool.get("stock-vllm-chatml", lambda port: vllm_server_argv(
        tiny_chatml_dir, port, extra=["--reasoning-parser", "qwen3", "--enable-auto-tool-choice",
                                      "--tool-call-parser", "hermes", "--logprobs-mode", "processed_logprobs"]))


PYTHON = sys.executable


# --- reference server (issue 3) -------------------------------------------------------------------

def reference_server_argv(model_dir, port: int, *, engine: str = "vllm", extra: list[str] | None = None) -> list[str]:
    """``gym-conformance serve`` as frameworks run it for Gym: qwen3 reasoning + hermes tool parsers."""
    return [PYTHON, "-m", "gym_conformance", "serve", "--model", str(model_dir), "--engine", engine,
            "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "1024",
            "--reasoning-parser", "qwen3", "--tool-parser", "hermes", *(extra or [])]


@pytest.fixture(scope="session")
def reference_server_qwen3(server_pool, tiny_qwen3_dir) -> str:
    """The reference server (vllm engine) on tiny-qwen3 with the real Qwen3 template; base URL without ``/v1``."""
    return server_pool.get("reference-server-qwen3", lambda port: reference_server_argv(tiny_qwen3_dir, port))


@pytest.fixture(scope="session")
def reference_server_chatml(server_pool, tiny_chatml_dir) -> str:
    """The reference server (vllm engine) on tiny-chatml; base URL without ``/v1``."""
    return server_pool.get("reference-server-chatml", lambda port: reference_server_argv(tiny_chatml_dir, port))


# --- benchmark-task environments (reference_impl/envs), shared by the env and GRPO tests ---------------

def env_server_argv(task: str, port: int) -> list[str]:
    return [PYTHON, "-m", "reference_impl.envs", "serve", "--task", task, "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning"]


@pytest.fixture(scope="session")
def arith_env(server_pool) -> str:
    """``python -m reference_impl.envs serve --task arith``; its base URL."""
    return server_pool.get("env-arith", lambda port: env_server_argv("arith", port), timeout=60)


@pytest.fixture(scope="session")
def lookup_env(server_pool) -> str:
    """``python -m reference_impl.envs serve --task lookup``; its base URL."""
    return server_pool.get("env-lookup", lambda port: env_server_argv("lookup", port), timeout=60)
