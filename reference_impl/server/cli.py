"""``gym-conformance serve``: parse and check the command line, build the engine, run uvicorn.

Bad input -- a missing model directory, an unknown parser, a half-given sampling profile, a bad
pass-through engine flag -- is one clear line on stderr and exit code 2 (gym_conformance.cli).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

ENGINES = ("vllm", "hf", "remote")


class CliError(ValueError):
    pass


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="local HF model directory (tokenizer + chat template + weights)")
    p.add_argument("--engine", choices=ENGINES, default="vllm")
    p.add_argument("--remote-url", help="base URL of the vLLM server the remote engine sends token ids to")
    p.add_argument("--remote-api-key", help="bearer key for the remote engine")
    p.add_argument("--served-model-name", help="model name clients send (default: the --model path)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", help="require Authorization: Bearer KEY on every route but /health")
    p.add_argument("--weights-root", action="append", metavar="DIR",
                   help="/weights/reload reads only under the model's directory and these (repeatable; default: "
                        "the working directory and the system temp directory)")
    p.add_argument("--max-body-bytes", type=int, default=64 * 2**20,
                   help="largest request body accepted (HTTP 413 beyond it)")
    p.add_argument("--temperature", type=float, help="training sampling profile (pins requests; contract §8.5)")
    p.add_argument("--top-p", type=float, help="training sampling profile; required with --temperature")
    p.add_argument("--val-temperature", type=float, help="optional validation profile")
    p.add_argument("--val-top-p", type=float, help="optional validation profile")
    p.add_argument("--sampling-overrides", action="store_true",
                   help="replace off-profile sampling with the training profile instead of answering 400")
    p.add_argument("--reasoning-parser", help="vLLM reasoning parser name, e.g. qwen3")
    p.add_argument("--tool-parser", help="vLLM tool parser name, e.g. hermes")
    p.add_argument("--chat-template-kwargs", type=json.loads, default=None,
                   help="JSON object of default chat_template_kwargs (request values win)")
    p.add_argument("--max-model-len", type=int, help="context length (default: the engine's)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("engine_args", nargs="*", metavar="-- ENGINE_ARGS",
                   help="after --: passed to vLLM's engine argument parser (vllm engine only)")


def _policy(args):
    from .sampling import Profile, SamplingPolicy

    if (args.temperature is None) != (args.top_p is None):
        raise CliError("--temperature and --top-p must be given together (top_p is never left to "
                       "generation_config.json; contract §8.5)")
    if (args.val_temperature is None) != (args.val_top_p is None):
        raise CliError("--val-temperature and --val-top-p must be given together")
    if args.temperature is None and (args.val_temperature is not None or args.sampling_overrides):
        raise CliError("--val-temperature/--sampling-overrides need a training profile (--temperature --top-p)")
    for name in ("temperature", "val_temperature"):
        v = getattr(args, name)
        if v is not None and v < 0:
            raise CliError(f"--{name.replace('_', '-')} must be >= 0")
    for name in ("top_p", "val_top_p"):
        v = getattr(args, name)
        if v is not None and not 0 < v <= 1:
            raise CliError(f"--{name.replace('_', '-')} must be in (0, 1]")
    train = Profile(args.temperature, args.top_p) if args.temperature is not None else None
    val = Profile(args.val_temperature, args.val_top_p) if args.val_temperature is not None else None
    return SamplingPolicy(train, val, args.sampling_overrides)


def _check_parsers(args) -> None:
    if not (args.reasoning_parser or args.tool_parser):
        return
    try:
        from vllm.reasoning import ReasoningParserManager
        from vllm.tool_parsers import ToolParserManager
    except ImportError as exc:
        raise CliError(f"--reasoning-parser/--tool-parser use vLLM's parsers, and vLLM is not importable: {exc}")
    if args.reasoning_parser and args.reasoning_parser not in ReasoningParserManager.list_registered():
        raise CliError(f"unknown --reasoning-parser {args.reasoning_parser!r}")
    if args.tool_parser and args.tool_parser not in ToolParserManager.list_registered():
        raise CliError(f"unknown --tool-parser {args.tool_parser!r}")


def build_service(args):
    """The Service for parsed, checked args (engine not started yet: the app's lifespan starts it)."""
    from transformers import AutoTokenizer

    from .service import Service

    model = Path(args.model)
    if not (model / "config.json").is_file():
        raise CliError(f"--model {args.model}: not a model directory (no config.json)")
    if args.port is not None and not 0 < args.port < 65536:
        raise CliError(f"--port {args.port} is out of range")
    if args.max_model_len is not None and args.max_model_len < 2:
        raise CliError("--max-model-len must be >= 2")
    if args.chat_template_kwargs is not None and not isinstance(args.chat_template_kwargs, dict):
        raise CliError("--chat-template-kwargs must be a JSON object")
    if args.engine_args and args.engine != "vllm":
        raise CliError("pass-through engine arguments (after --) are only for --engine vllm")
    if args.engine == "remote" and not args.remote_url:
        raise CliError("--engine remote needs --remote-url")
    policy = _policy(args)
    _check_parsers(args)
    served = args.served_model_name or args.model
    tokenizer = AutoTokenizer.from_pretrained(model)
    if args.engine == "vllm":
        from .engines.vllm_engine import VllmEngine, engine_args_from_argv

        engine = VllmEngine(engine_args_from_argv(str(model), args.max_model_len, served, args.engine_args,
                                                  reasoning_parser=args.reasoning_parser),
                            eos_token_id=tokenizer.eos_token_id)
    elif args.engine == "hf":
        from .engines.hf import HFEngine

        engine = HFEngine(model, eos_token_id=tokenizer.eos_token_id, max_model_len=args.max_model_len,
                          tokenizer=tokenizer)
    else:
        from .engines.remote import RemoteEngine

        engine = RemoteEngine(args.remote_url, model, eos_token_id=tokenizer.eos_token_id,
                              api_key=args.remote_api_key, max_model_len=args.max_model_len)
    try:
        return Service(tokenizer, engine, served_model_name=served, model_path=str(model), policy=policy,
                       reasoning_parser=args.reasoning_parser, tool_parser=args.tool_parser,
                       default_chat_template_kwargs=args.chat_template_kwargs, weights_roots=args.weights_root)
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def run(args) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        service = build_service(args)
    except (CliError, ValueError) as exc:
        print(f"gym-conformance serve: error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from .app import create_app

    app = create_app(service, api_key=args.api_key, max_body_bytes=args.max_body_bytes)
    # One worker: the engine lives in this process; vLLM's own parallelism scales it (issue 3).
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False,
                timeout_keep_alive=60)
    return 0
