"""The load tier's driver on an endpoint that stops answering (pure, through httpx's mock transport): the client's
breaker opens and every session stops starting rollouts, with or without ``--load-duration``. Before, a session
kept starting rollouts on the stopped client until the duration was up, each failing at once without yielding,
and piled up calls by the million."""
from __future__ import annotations

import httpx

from conformance.checks import Context, Target
from conformance.checks.load import LoadPlan, drive, figures
from conformance.client import GymClient, Runner

SESSIONS = 4


def queue_full(request: httpx.Request) -> httpx.Response:
    return httpx.Response(500, json={"error": {"message": "engine queue full", "type": "internal_server_error"}})


def test_a_stopped_endpoint_ends_every_session_instead_of_spinning_until_the_duration():
    target = Target("http://e/v1", model="m", timeout=1.0)  # the retry budget: 500s are retried for 1 s
    runner = Runner()
    ctx = Context(target, runner, client=GymClient("http://e/v1", model="m", transport=httpx.MockTransport(queue_full)))
    try:
        run = runner.run(drive([ctx], LoadPlan(SESSIONS, duration=60.0)))
    finally:
        runner.run(ctx.aclose())
        runner.close()
    m = figures(run)
    assert run.wall_s < 20, run.wall_s  # the breaker (sessions + 3 failures in a row) ends it, not the duration
    assert m["errors"] == m["calls"] and m["calls"] <= 3 * SESSIONS, m
    stopped = [c.timed.error for c in run.calls if "not sent" in c.timed.error]
    assert stopped and all("stopped answering" in e for e in stopped)
    assert all("HTTP 500 after" in c.timed.error for c in run.calls if "not sent" not in c.timed.error)
