"""Session-wide fixtures: the offline fixture models and one pool of live servers for the whole run.

Starting a vLLM server costs 25-75 s on these machines, so every server is started once per pytest session,
on first use, and shared by every test that asks for it (``server_pool.get``). A server stops as soon as no
test left in the run needs the fixture that started it: a vLLM server holds about 3 GiB, and keeping all of
them to the end of the session pushed a 24 GiB machine into page-cache thrashing (the vLLM selftest, last in
the run, went from 9 to over 15 minutes). A test that asks for a server fixture by name at run time
(``request.getfixturevalue``) declares it with ``@pytest.mark.uses_servers(name, ...)``; one that does not
only costs a restart. Servers log to ``reports/servers/<key>.log`` so a failed start leaves evidence behind.
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
    """Lazily started servers keyed by name: ``url = pool.get(key, lambda port: argv)``.

    Each server remembers the fixture whose setup started it (``None``: a test body), so ``release`` can stop
    it and invalidate that fixture's cached URL together: a later request simply starts it again.
    """

    def __init__(self) -> None:
        self._servers: dict[str, tuple[ServerProcess, tuple[pytest.FixtureDef, pytest.FixtureRequest] | None]] = {}

    def get(self, key: str, argv_for_port: Callable[[int], list[str]], *, env: dict[str, str] | None = None,
            timeout: float = 300.0) -> str:
        if key not in self._servers:
            port = free_port()
            SERVER_LOGS.mkdir(parents=True, exist_ok=True)
            server = ServerProcess(argv_for_port(port), port, env=env, timeout=timeout,
                                   log_path=SERVER_LOGS / f"{key}.log")
            server.start()
            self._servers[key] = (server, _SETTING_UP[-1] if _SETTING_UP else None)
        return self._servers[key][0].url

    def release(self, still_needed: frozenset[str]) -> None:
        """Stop every server whose fixture no remaining test needs, and forget that fixture's cached value."""
        for key, (server, owner) in list(self._servers.items()):
            if owner is not None and owner[0].argname in still_needed:
                continue
            del self._servers[key]
            server.stop()
            if owner is not None:
                owner[0].finish(owner[1])  # dependent fixtures (a gateway in front of it) are finished with it

    def stop_all(self) -> None:
        for server, _ in self._servers.values():
            server.stop()
        self._servers.clear()


POOL = ServerPool()
_SETTING_UP: list[tuple[pytest.FixtureDef, pytest.FixtureRequest]] = []  # fixtures being set up, innermost last
_NEEDED_AFTER = pytest.StashKey[dict[str, frozenset[str]]]()


class _FixtureTracker:
    """Keeps ``_SETTING_UP`` (registered as a plugin: a session-scoped fixture is set up through the session's
    hooks, which a conftest below the root directory does not take part in)."""

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        _SETTING_UP.append((fixturedef, request))
        try:
            return (yield)
        finally:
            _SETTING_UP.pop()


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("gym-conformance-fixture-tracker"):
        config.pluginmanager.register(_FixtureTracker(), "gym-conformance-fixture-tracker")


def pytest_collection_finish(session: pytest.Session) -> None:
    """For every test, the fixture names the tests after it use (statically or by ``uses_servers``)."""
    needed: set[str] = set()
    after: dict[str, frozenset[str]] = {}
    for item in reversed(session.items):
        after[item.nodeid] = frozenset(needed)
        needed.update(getattr(item, "fixturenames", ()))
        for mark in item.iter_markers("uses_servers"):
            needed.update(mark.args)
    session.stash[_NEEDED_AFTER] = after


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if hasattr(item.config, "workerinput"):
        return  # pytest-xdist schedules tests out of collection order; its workers keep servers to the end
    after = item.session.stash.get(_NEEDED_AFTER, {})
    if item.nodeid in after:
        POOL.release(after[item.nodeid])


@pytest.fixture(scope="session")
def server_pool():
    yield POOL
    POOL.stop_all()


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


# --- warm-start policies served by the reference server (GRPO tests and the loop selftest) ----------------

def policy_server_argv(task: str, engine: str, port: int) -> list[str]:
    """As the loop starts its own (``reference_impl.grpo.servers``): a step's seeded calls in one engine wave."""
    from reference_impl.grpo.servers import engine_passthrough

    return [PYTHON, "-m", "gym_conformance", "serve", "--model", str(fixture_path(f"warm-{task}")), "--engine",
            engine, "--served-model-name", "policy", "--host", "127.0.0.1", "--port", str(port),
            "--max-model-len", "1024", "--tool-parser", "hermes", *engine_passthrough(engine)]


@pytest.fixture(scope="session")
def arith_policy_vllm(server_pool) -> str:
    return server_pool.get("policy-arith-vllm", lambda port: policy_server_argv("arith", "vllm", port))


@pytest.fixture(scope="session")
def arith_policy_hf(server_pool) -> str:
    return server_pool.get("policy-arith-hf", lambda port: policy_server_argv("arith", "hf", port))


@pytest.fixture(scope="session")
def lookup_policy_vllm(server_pool) -> str:
    return server_pool.get("policy-lookup-vllm", lambda port: policy_server_argv("lookup", "vllm", port))
