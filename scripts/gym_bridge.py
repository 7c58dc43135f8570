"""Runs NeMo Gym's own ``vllm_model`` server code for gym-conformance's tests (Python >= 3.12, nemo-gym installed).

This file is executed by an interpreter from a side environment built by ``scripts/setup-gym-env.sh`` and
imports only the standard library and ``nemo_gym``: it must never import gym-conformance, whose whole point
here is to be compared with Gym.

Two modes:

``serve``   JSON lines on stdin, one answer line on stdout per request. Each request is
            ``{"config": {...VLLMModelConfig fields...}, "input": [...Responses items...],
            "params": {...other Responses create params...}, "completion": {...chat completion...},
            "tokenize": {...}?}``. The request goes through Gym's real FastAPI app (``POST /v1/responses``:
            Gym's converter, its model server's preprocessing, token extraction and postprocessing); the
            upstream chat completion is answered with ``completion`` instead of a network call, and the body
            Gym would have sent upstream is captured. Answer: ``{"body": ..., "tokenize_body": ...,
            "response": ...}`` or ``{"error": "..."}``.

            ``{"affinity": {"base_urls": [...], "session_ids": [...]}}`` answers with the endpoint index Gym's
            model server sends each session to: ``{"endpoints": [...]}``.

            ``{"contiguity": [...output items...]}`` answers with Gym's own contiguity rule
            (0.7.0 and later: ``assert_prefix_contiguity``): ``{"contiguous": bool, "why": ...}``.

``proxy``   Gym's ``vllm_model`` app as a real HTTP server in front of a real endpoint:
            ``proxy --port P --config JSON``; prints ``ready`` once it listens.
"""
from __future__ import annotations

import argparse
import asyncio
import copy
import json
import sys
import traceback


def _version() -> str:
    from importlib.metadata import version
    return version("nemo-gym")


def _model(config: dict):
    from omegaconf import OmegaConf
    from nemo_gym.config_types import BaseServerConfig
    from nemo_gym.server_utils import ServerClient
    from responses_api_models.vllm_model.app import VLLMModel, VLLMModelConfig

    fields = {"name": "policy_model", "host": "127.0.0.1", "port": 0, "entrypoint": "app.py",
              "api_key": "dummy_key", "model": "policy", "return_token_id_information": True,
              "uses_reasoning_parser": True, **config}
    client = ServerClient(head_server_config=BaseServerConfig(host="127.0.0.1", port=1),
                          global_config_dict=OmegaConf.create({}))
    return VLLMModel(config=VLLMModelConfig(**fields), server_client=client)


def _affinity(base_urls: list, session_ids: list) -> dict:
    """The endpoint index Gym's model server picks for each session id, in order (one model, fresh routing)."""
    from types import SimpleNamespace

    from nemo_gym.server_utils import SESSION_ID_KEY

    model = _model({"base_url": base_urls})
    picked = [model._resolve_client(SimpleNamespace(session={SESSION_ID_KEY: sid})) for sid in session_ids]
    return {"endpoints": [next(i for i, c in enumerate(model._clients) if c is p) for p in picked]}


def serve() -> None:
    from fastapi.testclient import TestClient

    apps: dict[str, tuple] = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            if "contiguity" in req:  # Gym's own rule (0.7.0's token_id_capture.builder.assert_prefix_contiguity)
                from nemo_gym.token_id_capture.builder import assert_prefix_contiguity
                try:
                    assert_prefix_contiguity({"output": req["contiguity"]})
                    answer = {"contiguous": True}
                except AssertionError as exc:
                    answer = {"contiguous": False, "why": str(exc)}
                sys.stdout.write(json.dumps(answer) + "\n")
                sys.stdout.flush()
                continue
            if "affinity" in req:  # Gym's own session routing over several base URLs (_resolve_client)
                sys.stdout.write(json.dumps(_affinity(**req["affinity"])) + "\n")
                sys.stdout.flush()
                continue
            key = json.dumps(req.get("config", {}), sort_keys=True)
            if key not in apps:
                model = _model({"base_url": "http://127.0.0.1:9/v1", **req.get("config", {})})
                apps[key] = (model, TestClient(model.setup_webserver()))
            model, http = apps[key]
            captured: dict = {}

            async def create_chat_completion(**body):
                captured["body"] = copy.deepcopy(body)
                return copy.deepcopy(req["completion"])

            async def create_tokenize(**body):
                captured["tokenize_body"] = copy.deepcopy(body)
                return copy.deepcopy(req.get("tokenize") or {"tokens": []})

            for c in model._clients:  # pydantic models: plain attribute assignment is refused
                object.__setattr__(c, "create_chat_completion", create_chat_completion)
                object.__setattr__(c, "create_tokenize", create_tokenize)
            resp = http.post("/v1/responses", json={"input": req["input"], **req.get("params", {})})
            answer = {"status": resp.status_code, **captured}
            answer["response"] = resp.json() if resp.headers.get("content-type", "").startswith(
                "application/json") else resp.text
        except Exception as exc:  # noqa: BLE001 - the error is the answer
            answer = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=4)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def proxy(port: int, config: dict) -> None:
    import uvicorn

    app = _model(config).setup_webserver()
    app.get("/health")(lambda: {"status": "ok"})  # for the launcher's readiness poll; Gym's routes are untouched
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        print("ready", flush=True)
        await task

    asyncio.run(main())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["serve", "proxy", "version"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--config", default="{}")
    args = parser.parse_args()
    # Gym reads its global config through hydra from sys.argv on first use (inside a request): leave it ours.
    sys.argv = sys.argv[:1]
    # ... and hydra writes an outputs/<date>/<time>/ folder into the working directory: give it a scratch one.
    import atexit
    import os
    import shutil
    import tempfile
    scratch = tempfile.mkdtemp(prefix="gym-bridge-")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    os.chdir(scratch)
    if args.mode == "version":
        print(_version())
    elif args.mode == "serve":
        serve()
    else:
        proxy(args.port, json.loads(args.config))
