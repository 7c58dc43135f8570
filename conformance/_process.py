"""Child processes: the one module in this repository that spawns them (a test greps for any other).

- :class:`ServerProcess` starts an HTTP server and waits until it answers (one server per test session,
  the demo, the benchmarks, the self-test). The server is identified only by its command line, so the
  harness can start the reference server or a stock vLLM server without importing either.
- :func:`run_command` runs a command to completion (the suite as a child of the demo and the self-test,
  command-line and shell-script tests).
- :class:`LineChild` keeps a child that answers one line of text per line it is sent (the NeMo Gym bridge).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
    "VLLM_CPU_KVCACHE_SPACE": "1", "TOKENIZERS_PARALLELISM": "false",
}


class ServerDidNotStart(RuntimeError):
    """The process exited or never answered its health route; the message carries its log tail."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``with ServerProcess(argv, port) as srv: httpx.get(srv.url + "/health")``.

    The process gets its own session so teardown can signal the whole group (vLLM runs an engine
    core child process next to the API server). ``own_session=False`` gives it its own process group only:
    Linux schedules each session as one autogroup with an equal share of the CPU, so a server in its own
    session takes a core from its parent even while it only busy-polls (the GRPO loop on 2 cores: update
    0.4 s -> 1.1 s, rollouts 0.6 s -> 0.85 s with its servers in their own sessions).
    """

    def __init__(self, argv: list[str], port: int, *, host: str = "127.0.0.1", health: str = "/health",
                 timeout: float = 240.0, env: dict[str, str] | None = None, log_path: Path | None = None,
                 die_with_parent: bool = True, own_session: bool = True):
        self.argv, self.port, self.host, self.health, self.timeout = argv, port, host, health, timeout
        # Linux: SIGTERM the server when its parent dies, even by SIGKILL (a training run killed with kill -9,
        # a self-test killed by its CI timeout, must not leave servers behind holding memory, CPU and ports).
        # The kernel signals when the *thread* that started the server ends: start servers from a thread that
        # outlives them (the main thread everywhere here).
        self.die_with_parent = die_with_parent and sys.platform.startswith("linux")
        # offline always; the KV-cache size only by default (a user's VLLM_CPU_KVCACHE_SPACE was overridden)
        kv = {"VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE") or OFFLINE_ENV["VLLM_CPU_KVCACHE_SPACE"]}
        self.env = {**os.environ, **OFFLINE_ENV, **kv, **(env or {})}
        self.log_path = log_path or Path(tempfile.mkstemp(prefix="gym-conformance-server-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None
        self.own_session = own_session

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self) -> "ServerProcess":
        log = self.log_path.open("wb")
        with log:  # the child holds its own copy of the descriptor
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                         **({"start_new_session": True} if self.own_session else {"process_group": 0}),
                                         preexec_fn=_parent_death_signal if self.die_with_parent else None)
        try:
            return self._await_health()
        except BaseException:  # never leave a half-started server behind (Ctrl-C, a harness bug, a timeout)
            self.stop()
            raise

    def _await_health(self) -> "ServerProcess":
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerDidNotStart(f"server exited with code {self.proc.returncode}: {' '.join(self.argv)}\n"
                                        f"--- log tail ({self.log_path}) ---\n{self.log_tail()}")
            try:
                if httpx.get(self.url + self.health, timeout=2.0).status_code == 200:
                    return self
            except Exception:  # noqa: BLE001 - not listening yet. httpx can leak raw httpcore errors when
                pass           # httpcore was re-imported (pytester restores sys.modules between tests)
            time.sleep(0.5)
        raise ServerDidNotStart(f"no 200 from {self.url + self.health} within {self.timeout:.0f}s: "
                                f"{' '.join(self.argv)}\n--- log tail ({self.log_path}) ---\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _parent_death_signal() -> None:
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def vllm_server_argv(model_dir: Path | str, port: int, *, served_name: str = "tiny", max_model_len: int = 1024,
                     extra: list[str] | None = None) -> list[str]:
    """Command line of stock vLLM's OpenAI server with the CPU-safe defaults (fp32, eager, small KV cache)."""
    return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
            "--host", "127.0.0.1", "--port", str(port), "--served-model-name", served_name,
            "--dtype", "float32", "--max-model-len", str(max_model_len), "--enforce-eager",
            # An explicit KV-cache size skips vllm-cpu's start-up check that a fraction of the node's memory
            # is free, which fails when several servers share the machine (one per test session here).
            "--kv-cache-memory-bytes", str(int(float(os.environ.get("VLLM_CPU_KVCACHE_SPACE") or 1) * 2**30)),
            *(extra or [])]


CommandTimedOut = subprocess.TimeoutExpired  # raised by run_command after it has killed the child


@dataclass(frozen=True)
class Finished:
    """A command that ran to completion: its exit code, and its output when it was captured."""

    returncode: int
    stdout: str = ""
    stderr: str = ""


def run_command(argv: list[str], *, cwd: Path | str | None = None, env: dict[str, str] | None = None,
                log_path: Path | None = None, capture: bool = False, timeout: float | None = None) -> Finished:
    """Run ``argv`` to completion and return its exit code (and its stdout and stderr when ``capture``).

    The child inherits this process's stdout and stderr unless ``capture`` (text, kept apart) or ``log_path``
    (both written to that file) says otherwise. ``env`` is added to this process's environment. A child that
    outlives ``timeout`` seconds, or this process being interrupted, kills it (:data:`CommandTimedOut`).
    """
    if capture and log_path is not None:
        raise ValueError("run_command: capture the output or log it to a file, not both")
    full_env = None if env is None else {**os.environ, **env}
    # The child dies with this process (it waits for the child in this thread, so the thread outlives it too).
    die = _parent_death_signal if sys.platform.startswith("linux") else None
    if log_path is not None:
        with log_path.open("wb") as log:
            done = subprocess.run(argv, cwd=cwd, env=full_env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout,
                                  preexec_fn=die)
    else:
        done = subprocess.run(argv, cwd=cwd, env=full_env, capture_output=capture, text=capture, timeout=timeout,
                              preexec_fn=die)
    return Finished(done.returncode, done.stdout or "", done.stderr or "")


class Background:
    """A command left running, its output (stdout and stderr) written to ``log_path``: ``signal(sig)`` it (what a
    CI job's timeout or Ctrl-C does), then ``wait()`` for its :class:`Finished` (stdout: the log's text)."""

    def __init__(self, argv: list[str], *, log_path: Path, cwd: Path | str | None = None):
        self.log_path = log_path
        self._log = log_path.open("wb")
        die = _parent_death_signal if sys.platform.startswith("linux") else None
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=die)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> Finished:
        """The exit code and output; a child still running after ``timeout`` seconds is killed (exit -9)."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        finally:
            self._log.close()
        return Finished(code, self.log_path.read_text(errors="replace"))


class LineChild:
    """A persistent child that answers each line written to its stdin with one line on its stdout.

    ``child.ask(line)`` returns the answer without its newline, or ``None`` when the child has exited;
    ``child.close()`` ends its input and waits for it (killing it after ``timeout``). Its stderr is discarded.
    """

    def __init__(self, argv: list[str], *, cwd: Path | str | None = None, env: dict[str, str] | None = None):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, cwd=cwd, env=None if env is None else {**os.environ, **env})

    def ask(self, line: str) -> str | None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        return answer.removesuffix("\n") if answer else None

    def poll(self) -> int | None:
        """The exit code, or ``None`` while the child runs."""
        return self.proc.poll()

    def kill(self) -> None:
        """SIGKILL, no clean-up in the child (what ``kill -9`` does to a training run), then reap it."""
        self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe:
                pipe.close()

    def close(self, timeout: float = 10.0) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
