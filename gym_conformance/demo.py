"""``gym-conformance demo``: the reference server on a fixture model, judged by the conformance suite.

Everything a framework author would do by hand, in one command: start ``gym-conformance serve`` on the
tiny model, run ``pytest --endpoint URL`` from an empty folder (the plugin contributes the tests), stop
the server, and point at the report. Both halves run as child processes: the harness judges the
reference over HTTP exactly as it judges anyone.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from conformance._process import ServerDidNotStart, ServerProcess, free_port, run_command
from fixtures import FIXTURE_NAMES, fixture_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fixture", default="tiny-chatml", choices=FIXTURE_NAMES,
                        help="fixture model to serve (default: tiny-chatml)")
    parser.add_argument("--report-dir", type=Path, default=Path("reports"),
                        help="where report.json, report.html and junit.xml go (default: reports/)")
    parser.add_argument("--hypothesis-profile", default="ci", help="hypothesis profile for the drift search")


def run(args: argparse.Namespace) -> int:
    model = fixture_path(args.fixture)
    report_dir = args.report_dir.resolve()
    port = free_port()
    serve = [sys.executable, "-m", "gym_conformance", "serve", "--model", str(model), "--engine", "vllm",
             "--served-model-name", args.fixture, "--port", str(port),
             "--reasoning-parser", "qwen3", "--tool-parser", "hermes"]
    report_dir.mkdir(parents=True, exist_ok=True)
    print(f"demo: starting the reference server on {args.fixture} (vLLM on CPU takes ~30-60 s) ...", flush=True)
    try:
        with ServerProcess(serve, port, log_path=report_dir / "demo-server.log") as server:
            print(f"demo: server up at {server.url}; running the conformance suite", flush=True)
            with tempfile.TemporaryDirectory(prefix="gym-conformance-demo-") as empty:
                suite = [sys.executable, "-m", "pytest", "--endpoint", f"{server.url}/v1",
                         "--tokenizer", str(model), "--conformance-report", str(report_dir),
                         "--hypothesis-profile", args.hypothesis_profile, "-p", "no:cacheprovider", "-q"]
                code = run_command(suite, cwd=empty).returncode
    except ServerDidNotStart as exc:
        print(f"demo: the reference server did not start: {exc}", file=sys.stderr)
        return 2
    html = report_dir / "report.html"
    print(f"demo: conformance exit code {code}; report: {html if html.exists() else report_dir / 'report.json'}")
    return code
