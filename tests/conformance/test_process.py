"""Child servers are never left behind: a start that fails or is interrupted stops the process it spawned.
Commands run to completion report their exit code and output; a line child answers line by line."""
import sys
import time

import pytest

from conformance._process import CommandTimedOut, LineChild, ServerDidNotStart, ServerProcess, free_port, \
    run_command


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


def test_run_command_captures_logs_or_inherits_and_adds_env(tmp_path, capfd):
    code = "import os, sys; print(os.environ['GC_X']); print('err', file=sys.stderr); sys.exit(3)"
    done = run_command([sys.executable, "-c", code], env={"GC_X": "on"}, capture=True, cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (3, "on\n", "err\n")
    logged = run_command([sys.executable, "-c", code], env={"GC_X": "log"}, log_path=tmp_path / "x.log")
    assert logged.returncode == 3 and logged.stdout == "" and (tmp_path / "x.log").read_text() == "log\nerr\n"
    assert run_command([sys.executable, "-c", "print('through')"]).returncode == 0
    assert "through" in capfd.readouterr().out


def test_run_command_kills_a_child_past_its_timeout():
    with pytest.raises(CommandTimedOut):
        run_command([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5)


def test_a_line_child_answers_line_by_line_and_reports_its_exit():
    echo = ("import sys\nfor line in sys.stdin:\n    if line.strip() == 'quit': sys.exit(4)\n"
            "    print(line.strip().upper(), flush=True)\n")
    child = LineChild([sys.executable, "-c", echo])
    assert child.ask("a") == "A" and child.ask("b c") == "B C" and child.poll() is None
    assert child.ask("quit") is None and child.proc.wait(timeout=10) == 4
    child.close()
    hung = LineChild([sys.executable, "-c", "import time; time.sleep(60)"])
    hung.close(timeout=0.5)
    assert hung.poll() is not None, "close() must not leave a child that ignores its closed stdin"


def _alive(pid: int) -> bool:
    import os
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_parent_killed_with_sigkill_takes_its_servers_and_commands_with_it(tmp_path):
    # A CI timeout SIGKILLs the self-test: its zoo server (own session) and its running suites must not outlive it.
    import json
    import os
    import signal
    import time

    parent = (
        "import sys, json, threading, os\n"
        "from pathlib import Path\n"
        "from conformance._process import ServerProcess, free_port, run_command\n"
        "port = free_port()\n"
        "srv = ServerProcess([sys.executable, '-m', 'http.server', '--bind', '127.0.0.1', str(port)], port,\n"
        "                    health='/', log_path=Path(sys.argv[1]) / 'srv.log').start()\n"
        "cmd = [sys.executable, '-c', 'import os, time; print(os.getpid(), flush=True); time.sleep(120)']\n"
        "t = threading.Thread(target=run_command, args=(cmd,), kwargs={'log_path': Path(sys.argv[1]) / 'cmd.log'})\n"
        "t.start()\n"
        "print(json.dumps({'server': srv.proc.pid}), flush=True)\n"
        "t.join()\n")
    proc = LineChild([sys.executable, "-c", parent, str(tmp_path)])
    assert proc.proc.stdout is not None
    server = json.loads(proc.proc.stdout.readline())["server"]
    deadline = time.monotonic() + 30
    while not (tmp_path / "cmd.log").read_text().strip() if (tmp_path / "cmd.log").exists() else True:
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.1)
    command = int((tmp_path / "cmd.log").read_text().split()[0])
    assert _alive(server) and _alive(command)
    proc.kill()  # SIGKILL: no clean-up runs in the parent
    deadline = time.monotonic() + 10
    while (_alive(server) or _alive(command)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in (server, command):
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert not _alive(server), "the server outlived its SIGKILLed parent"
    assert not _alive(command), "the command outlived its SIGKILLed parent"


def test_a_background_command_can_be_signalled_and_its_output_read(tmp_path):
    import signal

    from conformance._process import Background

    child = Background([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
                       log_path=tmp_path / "log")
    deadline = time.monotonic() + 30
    while "up" not in (tmp_path / "log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    child.signal(signal.SIGTERM)
    done = child.wait(timeout=10)
    assert done.returncode == -signal.SIGTERM and done.stdout == "up\n"
