"""Serve the reference and every mutant from one process and one engine, each under its own prefix.

    python -m reference_impl.mutants --port 8000 [serve options]   # model defaults to tiny-chatml
    # -> http://127.0.0.1:8000/reference/v1, http://127.0.0.1:8000/no-correction/v1, ...

Almost every defect sits in the request layer (prompt planning, response building, error mapping), so
those mutants share the reference's engine: one vLLM start for the whole zoo (issue 5). Mutants that
serve with a drift-variant template load that variant's tokenizer; all tiny-chatml variants share weights.

Engine hook: a defect module whose defect lives below the request layer (e.g. ``stale_weights``) may
define ``make_engine(reference: Service) -> Engine``. It is called once while the app is built (the
reference engine is not started yet; its tokenizer, model path and policy are there); the engine it
returns serves that mutant alone, is started in the lifespan after the reference engine (so it may
read e.g. ``max_model_len`` from it) and closed before it.
"""
from __future__ import annotations

import argparse
import sys
from contextlib import asynccontextmanager

from . import DEFAULT_FIXTURE, discover

REFERENCE = "reference"


def build_app(args: argparse.Namespace):
    from fastapi import FastAPI
    from transformers import AutoTokenizer

    from fixtures import fixture_path
    from reference_impl.server.app import create_app
    from reference_impl.server.cli import build_service

    reference = build_service(args)
    services = {REFERENCE: reference}
    own_engines = []  # engines from make_engine hooks, in build order
    for spec in discover().values():
        tokenizer = reference.tokenizer if spec.fixture == DEFAULT_FIXTURE else \
            AutoTokenizer.from_pretrained(fixture_path(spec.fixture))
        engine = reference.engine
        if hasattr(spec.module, "make_engine"):
            engine = spec.module.make_engine(reference)
            own_engines.append(engine)
        services[spec.name] = spec.module.Mutant(
            tokenizer, engine, served_model_name=reference.served_model_name,
            model_path=reference.model_path, policy=reference.policy, reasoning_parser=args.reasoning_parser,
            tool_parser=args.tool_parser, default_chat_template_kwargs=args.chat_template_kwargs,
            weights_roots=args.weights_root)

    @asynccontextmanager
    async def lifespan(app):
        # Mounted apps' own lifespans do not run under Starlette: the shared engine starts here, once,
        # then the mutants' own engines (make_engine hook); they close in reverse order.
        started = []
        try:
            for engine in [reference.engine, *own_engines]:
                await engine.start()
                started.append(engine)
            yield
        finally:
            for engine in reversed(started):
                await engine.close()

    root = FastAPI(title="gym-conformance mutant zoo", lifespan=lifespan, docs_url=None, redoc_url=None,
                   openapi_url=None)

    @root.get("/health")
    async def health():
        ok = all([await e.healthy() for e in [reference.engine, *own_engines]])
        return {"status": "ok" if ok else "unhealthy"}

    @root.get("/mutants")
    async def mutants():
        return {"reference": f"/{REFERENCE}/v1",
                "mutants": [{"name": s.name, "summary": s.summary, "reproduces": s.reproduces, "fixture": s.fixture,
                             "base_url": f"/{s.name}/v1"} for s in discover().values()]}

    for name, service in services.items():
        root.mount(f"/{name}", create_app(service, api_key=args.api_key, max_body_bytes=args.max_body_bytes))
    return root


def main(argv: list[str] | None = None) -> int:
    from fixtures import fixture_path
    from reference_impl.server.cli import CliError, add_arguments

    parser = argparse.ArgumentParser(prog="python -m reference_impl.mutants", description=__doc__.splitlines()[0])
    add_arguments(parser)
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--model" not in argv:
        argv = ["--model", str(fixture_path(DEFAULT_FIXTURE)), *argv]
    args = parser.parse_args(argv)
    try:
        app = build_app(args)
    except (CliError, ValueError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0
