"""Shared fixtures for the conformance tests: fixture tokenizers, fake endpoints, a check context over them."""
from __future__ import annotations

import httpx
import pytest

from conformance.checks import Context, Reference, Target
from conformance.client import GymClient, Runner
from fixtures import fixture_path

from .fake_endpoint import FakeEndpoint


@pytest.fixture(scope="session")
def chatml_ref() -> Reference:
    return Reference(str(fixture_path("tiny-chatml")))


@pytest.fixture(scope="session")
def qwen3_ref() -> Reference:
    return Reference(str(fixture_path("tiny-qwen3")))


@pytest.fixture(scope="session")
def runner():
    r = Runner()
    yield r
    r.close()


@pytest.fixture
def fake_ctx(runner, chatml_ref):
    """``ctx = fake_ctx(defects={"double-eos"}, mode="splice")``: a check context over an in-memory fake."""
    made = []

    def make(*, defects=(), mode="splice", ref: Reference | None = None, reply="ok", kwargs=None) -> Context:
        ref = ref or chatml_ref
        fake = FakeEndpoint(ref, mode=mode, defects=set(defects), reply=reply)
        client = GymClient("http://fake/v1", transport=httpx.MockTransport(fake.handler), timeout=5,
                           retry_budget_s=1.0, retry_pause_s=0.01)
        ctx = Context(Target("http://fake/v1", tokenizer=ref.name, chat_template_kwargs=kwargs or {}), runner,
                      reference=ref, client=client)
        ctx.fake = fake
        made.append(ctx)
        return ctx
    yield make
    for ctx in made:
        runner.run(ctx.client.aclose())
