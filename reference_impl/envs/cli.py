"""``python -m reference_impl.envs`` (and ``gym-conformance env``): serve a task, or write its data.

    python -m reference_impl.envs serve --task arith|lookup [--host 127.0.0.1] [--port 8000]
    python -m reference_impl.envs data --task arith|lookup --out DIR [--seed 0]

``serve`` runs the task's resources server under uvicorn (one process, one worker: the sessions live in
it). ``data`` writes ``<task>_train.jsonl`` and ``<task>_validation.jsonl`` through
``fixtures.tasks.write_jsonl``, the same rows the warm-start fixture trains on. Bad input (an unknown task,
a missing option) is one line on stderr and exit code 2, as everywhere in this project.

Exposes ``add_arguments(parser)`` and ``run(args)``, the command interface ``gym_conformance.cli`` expects.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fixtures.tasks import TASKS, write_jsonl


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one clear line and exit code 2, without argparse's usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=type(parser))
    common = {"formatter_class": parser.formatter_class}
    serve = sub.add_parser("serve", help="serve a task as a NeMo Gym resources server", **common,
                           description="Serve a task as a NeMo Gym resources server (POST /seed_session, "
                                       "/verify and the task's tool routes; GET /health).")
    serve.add_argument("--task", required=True, choices=TASKS, help="the task to serve")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                       help="uvicorn's log level")
    data = sub.add_parser("data", help="write a task's JSONL splits (train, validation)", **common,
                          description="Write <task>_train.jsonl and <task>_validation.jsonl, Gym rows.")
    data.add_argument("--task", required=True, choices=TASKS, help="the task whose rows to write")
    data.add_argument("--out", required=True, type=Path, help="directory to write into (created if missing)")
    data.add_argument("--seed", type=int, default=0, help="the rows' seed (same seed, same rows)")


def run(args: argparse.Namespace) -> int:
    if args.action == "data":
        for split, path in write_jsonl(args.task, args.out, seed=args.seed).items():
            print(f"{split}: {path}")
        return 0
    import uvicorn

    from .app import create_app

    uvicorn.run(create_app(args.task), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m reference_impl.envs",
                     description="Serve a benchmark task as a NeMo Gym resources server, or write its rows.",
                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except OSError as exc:  # e.g. an --out directory that cannot be written, a port already in use
        print(f"{parser.prog} {args.action}: error: {exc}", file=sys.stderr)
        return 2
