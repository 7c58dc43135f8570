"""Child servers are never left behind: a start that fails or is interrupted stops the process it spawned."""
import sys

import pytest

from conformance._process import ServerDidNotStart, ServerProcess, free_port


def _sleeper(tmp_path, timeout):
    port = free_port()
    return ServerProcess([sys.executable, "-c", "import time; time.sleep(120)"], port, timeout=timeout,
                         log_path=tmp_path / "server.log")


def test_a_server_that_never_answers_is_stopped_and_named(tmp_path):
    server = _sleeper(tmp_path, timeout=1.0)
    with pytest.raises(ServerDidNotStart, match="no 200 from"):
        server.start()
    assert server.proc.poll() is not None, "the child outlived its failed start"


def test_an_exit_during_start_reports_the_code_and_log_tail(tmp_path):
    port = free_port()
    server = ServerProcess([sys.executable, "-c", "print('bad flag'); raise SystemExit(2)"], port, timeout=30,
                           log_path=tmp_path / "server.log")
    with pytest.raises(ServerDidNotStart, match=r"exited with code 2(.|\n)*bad flag"):
        server.start()


def test_an_interrupted_start_stops_the_child(tmp_path, monkeypatch):
    server = _sleeper(tmp_path, timeout=30)

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr("conformance._process.httpx.get", interrupted)
    with pytest.raises(KeyboardInterrupt):
        server.start()
    assert server.proc.poll() is not None, "the child outlived an interrupted start"
