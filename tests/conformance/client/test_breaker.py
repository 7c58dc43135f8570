"""The client's bounds on a half-broken endpoint (pure, through httpx's mock transport): the breaker counts
requests without a usable answer in a row, a usable answer (a 4xx too) resets it, an open breaker or a passed
deadline sends nothing more, and a body over the cap is refused."""
from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from conformance.client import GymClient
from conformance.core import EndpointError, EndpointStopped

URL = "http://e/v1/chat/completions"


def client(handler, **kw) -> GymClient:
    return GymClient("http://e/v1", model="m", transport=httpx.MockTransport(handler), retry_budget_s=0.0,
                     retry_pause_s=0.0, **kw)


def post(c: GymClient):
    return asyncio.run(c.request("POST", URL, {"x": 1}))


def test_three_unusable_answers_in_a_row_stop_the_client_and_a_usable_one_resets_the_count():
    answers = iter([503, 503, 400, 503, 503, 503, 200])
    c = client(lambda request: httpx.Response(next(answers), json={}))
    for _ in range(2):
        with pytest.raises(EndpointError):
            post(c)
    assert post(c).status_code == 400 and c.failures_in_a_row == 0  # a refusal is an answer
    for _ in range(3):
        with pytest.raises(EndpointError) as info:
            post(c)
        assert not isinstance(info.value, EndpointStopped)
    assert c.stopped and "3 requests in a row" in c.stopped and "HTTP 503" in c.stopped
    with pytest.raises(EndpointStopped, match="not sent: the endpoint stopped answering"):
        post(c)  # the 200 waiting in the queue is never asked for
    assert next(answers) == 200


def test_connection_errors_count_and_a_passed_deadline_sends_nothing():
    def refuse(request):
        raise httpx.ConnectError("refused")

    c = client(refuse, breaker_threshold=2)
    for _ in range(2):
        with pytest.raises(EndpointError, match="cannot connect"):
            post(c)
    assert c.stopped is not None
    sent = []
    late = client(lambda request: sent.append(1) or httpx.Response(200, json={}), deadline=time.monotonic() - 1)
    with pytest.raises(EndpointStopped, match="deadline"):
        post(late)
    assert sent == []


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_a_body_over_the_cap_is_refused(declared):
    body = b"x" * 5000

    async def chunks():  # no length announced: the cap is met while reading
        for i in range(0, len(body), 500):
            yield body[i:i + 500]

    c = client(lambda request: httpx.Response(200, content=body if declared else chunks()), max_response_bytes=1000)
    with pytest.raises(EndpointError, match="the most the harness reads"):
        post(c)
    small = client(lambda request: httpx.Response(200, json={"ok": True}), max_response_bytes=1000)
    assert post(small).json() == {"ok": True}
