"""Shared fixtures for the conformance tests: fixture tokenizers, the session loop, and the reference server and
its mutants (the mutant zoo) in process and over HTTP, with check contexts on them."""
from __future__ import annotations

import httpx
import pytest

from conformance.checks import Context, Reference, Target
from conformance.client import GymClient, Runner
from fixtures import fixture_path



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


# --- the reference server and its mutants, in process (one defect catalogue: reference_impl/mutants) -------

ZOO_ARGS = ["--engine", "hf", "--served-model-name", "tiny", "--max-model-len", "1024",
            "--reasoning-parser", "qwen3", "--tool-parser", "hermes"]  # as the selftest serves the zoo


def build_zoo():
    """The mutant zoo app (reference + every mutant, one engine) on the transformers engine and tiny-chatml."""
    import argparse

    from reference_impl.mutants.host import build_app
    from reference_impl.server.cli import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return build_app(parser.parse_args(["--model", str(fixture_path("tiny-chatml")), *ZOO_ARGS]))


@pytest.fixture(scope="session")
def zoo(runner):
    """The zoo app with its lifespan entered on the session loop (engines started once for the session)."""
    import contextlib

    app = build_zoo()
    stack = contextlib.AsyncExitStack()
    runner.run(stack.enter_async_context(app.router.lifespan_context(app)))
    yield app
    runner.run(stack.aclose())


@pytest.fixture
def zoo_ctx(runner, zoo, chatml_ref):
    """``ctx = zoo_ctx("no-correction")``: a check context on one mount of the in-process zoo, over
    ``httpx.ASGITransport`` (the real server code, no network), configured as the selftest configures the suite."""
    made = []

    def make(mount: str = "reference", **target: object) -> Context:
        base = f"http://zoo/{mount}"
        client = GymClient(base + "/v1", model="tiny", transport=httpx.ASGITransport(app=zoo), timeout=60,
                           retry_budget_s=1.0, retry_pause_s=0.01)
        settings = dict(model="tiny", tokenizer=chatml_ref.name, strict=True, rescore_model=chatml_ref.name,
                        refit_url=base + "/weights/reload")
        settings.update(target)
        ctx = Context(Target(base + "/v1", **settings), runner, reference=chatml_ref, client=client)
        made.append(ctx)
        return ctx
    yield make
    for ctx in made:
        runner.run(ctx.client.aclose())


@pytest.fixture(scope="session")
def zoo_url():
    """The zoo over real HTTP (its own app and engine, uvicorn in a thread): ``f"{zoo_url}/<mount>/v1"``, for
    tests that run the suite as users do (pytest --endpoint, gym-conformance run)."""
    from .hostile import serve

    with serve(build_zoo(), lifespan="on") as url:
        yield url
