"""The environment servers, started once per test session as real child processes on free ports."""
from __future__ import annotations

import sys

import pytest


def env_server_argv(task: str, port: int) -> list[str]:
    return [sys.executable, "-m", "reference_impl.envs", "serve", "--task", task, "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning"]


@pytest.fixture(scope="session")
def arith_env(server_pool) -> str:
    """``python -m reference_impl.envs serve --task arith``; its base URL."""
    return server_pool.get("env-arith", lambda port: env_server_argv("arith", port), timeout=60)


@pytest.fixture(scope="session")
def lookup_env(server_pool) -> str:
    """``python -m reference_impl.envs serve --task lookup``; its base URL."""
    return server_pool.get("env-lookup", lambda port: env_server_argv("lookup", port), timeout=60)
