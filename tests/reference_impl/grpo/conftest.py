"""Servers for the training tests: the reference server on a warm-start policy and the task's environment,
started once per session and shared (every run refits the server with its own weights before sampling)."""
from __future__ import annotations

import pytest

from fixtures import fixture_path
from tests.conftest import PYTHON


def policy_server_argv(task: str, engine: str, port: int) -> list[str]:
    return [PYTHON, "-m", "gym_conformance", "serve", "--model", str(fixture_path(f"warm-{task}")), "--engine",
            engine, "--served-model-name", "policy", "--host", "127.0.0.1", "--port", str(port),
            "--max-model-len", "1024", "--tool-parser", "hermes"]


@pytest.fixture(scope="session")
def arith_policy_vllm(server_pool) -> str:
    return server_pool.get("policy-arith-vllm", lambda port: policy_server_argv("arith", "vllm", port))


@pytest.fixture(scope="session")
def arith_policy_hf(server_pool) -> str:
    return server_pool.get("policy-arith-hf", lambda port: policy_server_argv("arith", "hf", port))


@pytest.fixture(scope="session")
def lookup_policy_vllm(server_pool) -> str:
    return server_pool.get("policy-lookup-vllm", lambda port: policy_server_argv("lookup", "vllm", port))
