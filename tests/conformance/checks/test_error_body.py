"""E23 (MAY, graded INFO) has no mutant: its body-shape logic is checked here over canned replies."""
from __future__ import annotations

import httpx
import pytest

from conformance.checks import Context, Target, run_check
from conformance.client import GymClient
from conformance.core import CheckFailure


def _ctx(runner, status: int, body: dict) -> Context:
    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)
    client = GymClient("http://canned/v1", model="m", transport=httpx.MockTransport(reply), timeout=5)
    return Context(Target("http://canned/v1", model="m"), runner, client=client)


def test_openai_error_object_passes(runner):
    run_check(_ctx(runner, 400, {"error": {"message": "messages: not a list", "type": "invalid_request_error",
                                           "code": 400}}), "E23")


@pytest.mark.parametrize("status, body, words", [
    (422, {"detail": [{"loc": ["body", "messages"], "msg": "not a list"}]}, "no error object"),  # FastAPI default
    (400, {"error": {"message": "bad"}}, "error missing ['type', 'code']"),
    (500, {"error": {"message": "boom", "type": "server_error", "code": 500}}, "HTTP 500"),
])
def test_other_shapes_are_reported(runner, status, body, words):
    with pytest.raises(CheckFailure) as info:  # the plugin grades it INFO (never failing the run)
        run_check(_ctx(runner, status, body), "E23")
    assert words in info.value.verdict and info.value.tier == "INFO"
