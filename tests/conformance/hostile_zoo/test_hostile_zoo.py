"""The suite against hostile endpoints, as a framework's CI runs it (issue 13): ``gym-conformance run --endpoint
URL --conformance-timeout 10`` against each endpoint of the zoo must end within 2 minutes with a valid report,
every affected check an error or failure naming the cause, no traceback, nothing unescaped, exit 0/1/2 by the
rule; SIGTERM or SIGINT mid-run leaves a valid report marked interrupted.

The runs are I/O-bound (each waits on its endpoint's timeouts), so they go side by side."""
from __future__ import annotations

import json
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conformance._process import Background, run_command
from conformance.report import load

from ._endpoints import BEHAVIOURS, SCRIPT, hostile_endpoints

ROOT = Path(__file__).resolve().parents[3]
BOUND_S = 120
# exit 2: the client stopped driving an endpoint that gave no usable answer three requests in a row;
# exit 1: the endpoint answered, wrongly, and the checks say how
EXPECTED = {
    "hangs-after-headers": (2, "no complete response within 10s"),
    "drips-bytes": (2, "no complete response within 10s"),
    "resets-connections": (2, "stopped answering"),
    "refuses-mid-run": (2, "stopped answering"),
    "storm-503": (2, "HTTP 503 after"),
    "rate-limited-429": (2, "HTTP 429 after"),
    "html-500": (2, "HTTP 500 after"),
    "body-50mb": (2, "the most the harness reads"),
    "malformed-json": (1, "not JSON"),
    "wrong-content-type": (1, "not JSON"),
    "redirect-loop": (1, "HTTP 302"),
    "script-everywhere": (1, ""),
}


def _argv(url: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "gym_conformance", "run", "--endpoint", url, "--model", "tiny",
            "--conformance-timeout", "10", "--report", str(out)]


def _run(url: str, out: Path) -> tuple[int, float, str]:
    t0 = time.monotonic()
    done = run_command(_argv(url, out), cwd=out.parent, capture=True, timeout=BOUND_S + 60)
    return done.returncode, time.monotonic() - t0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    with hostile_endpoints() as urls, ThreadPoolExecutor(len(urls)) as pool:
        futures = {name: pool.submit(_run, url, base / name) for name, url in urls.items()}
        return {name: (*f.result(), base / name) for name, f in futures.items()}


def test_every_endpoint_of_the_zoo_is_covered():
    assert set(EXPECTED) == set(BEHAVIOURS)


@pytest.mark.parametrize("name", BEHAVIOURS)
def test_a_hostile_endpoint_ends_in_bounded_time_with_a_report(runs, name):
    code, seconds, output, out = runs[name]
    want_code, cause = EXPECTED[name]
    assert seconds < BOUND_S, f"{name}: {seconds:.0f}s"
    assert code == want_code, output[-2000:]
    assert "Traceback" not in output, output[-3000:]
    report = load(out / "report.json")  # validates against the report model
    messages = " ".join(r.message or "" for r in report.results if r.outcome in ("fail", "error"))
    assert report.summary.verdict in ("fail", "error"), report.summary.verdict  # checks before a stop may fail
    assert cause in messages, messages[:2000]
    if code == 2:  # the checks after the stop are errors naming why, not failures of what they check
        stopped = [r for r in report.results if r.outcome == "error" and "stopped answering" in (r.message or "")]
        assert stopped, messages[:2000]
    page = (out / "report.html").read_text()
    assert SCRIPT not in page and "<script>alert" not in page


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_run_leaves_a_valid_report_marked_interrupted(tmp_path, sig):
    with hostile_endpoints(["hangs-after-headers"]) as urls:
        proc = Background(_argv(urls["hangs-after-headers"], tmp_path / "out"), cwd=tmp_path,
                          log_path=tmp_path / "run.log")
        deadline = time.monotonic() + 60
        while urls.posts("hangs-after-headers") == 0 and time.monotonic() < deadline:
            time.sleep(0.2)  # mid-run: the suite is waiting on its first check's call
        time.sleep(1)
        proc.signal(sig)
        done = proc.wait(timeout=60)
    output = done.stdout
    assert done.returncode == 2, output[-2000:]
    assert "Traceback" not in output, output[-3000:]
    report = load(tmp_path / "out" / "report.json")
    run = [r for r in report.results if r.check_id == "RUN"]
    assert run and f"interrupted ({sig.name})" in run[0].message, json.dumps([r.message for r in report.results])
