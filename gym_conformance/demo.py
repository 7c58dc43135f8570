"""``gym-conformance demo``: the reference server on a fixture model, judged by the conformance suite.

Everything a framework author would do by hand, in one command: start ``gym-conformance serve`` on the
tiny model, run ``gym-conformance run --endpoint URL`` from an empty folder (the plugin contributes the tests;
on a terminal it shows the live progress per check family and the summary table), stop the server, and point
at the report. Both halves run as child processes: the harness judges the reference over HTTP exactly as it
judges anyone.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

from conformance._process import ServerDidNotStart, ServerProcess, free_port, run_command
from fixtures import FIXTURE_NAMES, fixture_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fixture", default="tiny-chatml", choices=FIXTURE_NAMES, help="fixture model to serve")
    parser.add_argument("--report-dir", type=Path, default=Path("reports"),
                        help="where report.json, report.html and junit.xml go")
    parser.add_argument("--hypothesis-profile", default="ci", choices=["ci", "deep"],
                        help="hypothesis profile for the drift search")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    quiet = bool(getattr(args, "quiet", False))
    console = Console()
    live = console.is_terminal and not quiet
    model = fixture_path(args.fixture)
    report_dir = args.report_dir.resolve()
    port = free_port()
    serve = [sys.executable, "-m", "gym_conformance", "serve", "--model", str(model), "--engine", "vllm",
             "--served-model-name", args.fixture, "--port", str(port),
             "--reasoning-parser", "qwen3", "--tool-parser", "hermes"]
    report_dir.mkdir(parents=True, exist_ok=True)
    starting = f"demo: starting the reference server on {args.fixture} (vLLM on CPU takes ~30-60 s) ..."
    if not live and not quiet:
        print(starting, flush=True)
    try:
        with contextlib.ExitStack() as stack:
            with console.status(starting) if live else contextlib.nullcontext():
                server = stack.enter_context(ServerProcess(serve, port, log_path=report_dir / "demo-server.log"))
            if not quiet:
                print(f"demo: server up at {server.url}; running the conformance suite", flush=True)
            with tempfile.TemporaryDirectory(prefix="gym-conformance-demo-") as empty:
                suite = [sys.executable, "-m", "gym_conformance", *(["--quiet"] if quiet else []), "run",
                         "--endpoint", f"{server.url}/v1", "--tokenizer", str(model),
                         "--conformance-report", str(report_dir), "--hypothesis-profile", args.hypothesis_profile]
                code = run_command(suite, cwd=empty).returncode  # inherits the terminal: the run's own display
    except ServerDidNotStart as exc:
        print(f"gym-conformance demo: error: the reference server did not start: {exc}", file=sys.stderr)
        return 2
    html = report_dir / "report.html"
    if not quiet:
        print(f"demo: conformance exit code {code}; report: {html if html.exists() else report_dir / 'report.json'}")
    return code
