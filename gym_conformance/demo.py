"""``gym-conformance demo``: what the harness catches, shown on one fixture model served two ways.

The reference server and stock vLLM serve the same fixture; the conformance suite runs against each, from an
empty folder, exactly as a framework author runs it; then the comparison page puts the two runs side by side.
The console ends with one sentence per check stock vLLM fails. Every server and suite is a child process: the
harness judges both over HTTP, as it judges anyone.

    reports/demo/reference/   report.json, report.html, junit.xml
    reports/demo/stock-vllm/  the same for stock vLLM
    reports/demo/compare.html both side by side
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from conformance._process import ServerDidNotStart, ServerProcess, free_port, run_command, vllm_server_argv
from fixtures import FIXTURE_NAMES, fixture_path

RUNS = ("reference", "stock-vllm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fixture", default="tiny-qwen3", choices=FIXTURE_NAMES,
                        help="fixture model both servers serve")
    parser.add_argument("--report-dir", type=Path, default=Path("reports/demo"),
                        help="where the two runs' reports and compare.html go")
    parser.add_argument("--hypothesis-profile", default="ci", choices=["ci", "deep"],
                        help="hypothesis profile for the drift search")


@dataclass
class DemoResult:
    codes: dict[str, int]       # run name -> suite exit code
    compare: Path | None        # the comparison page
    stock_failures: list[str]   # one sentence per check stock vLLM fails


def server_argv(run: str, model: Path, port: int, served_name: str) -> list[str]:
    """Both servers as frameworks run them for Gym: qwen3 reasoning and hermes tool parsers."""
    if run == "reference":
        return [sys.executable, "-m", "gym_conformance", "serve", "--model", str(model), "--engine", "vllm",
                "--served-model-name", served_name, "--port", str(port), "--reasoning-parser", "qwen3",
                "--tool-parser", "hermes"]
    return vllm_server_argv(model, port, served_name=served_name, extra=[
        "--reasoning-parser", "qwen3", "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
        "--logprobs-mode", "processed_logprobs"])


def judge(urls: dict[str, str], model: Path, report_dir: Path, *, profile: str = "ci",
          quiet: bool = False) -> DemoResult:
    """Run the suite against each endpoint (base URLs without ``/v1``), then write the comparison page."""
    from conformance.report import load
    from conformance.report.compare import Run, relative_href, render_compare_html
    from conformance.report._io import write_atomic

    codes, runs = {}, []
    for name, url in urls.items():
        out = report_dir / name
        out.mkdir(parents=True, exist_ok=True)
        if not quiet:
            print(f"demo: the conformance suite against {name} ({url}/v1)", flush=True)
        with tempfile.TemporaryDirectory(prefix="gym-conformance-demo-") as empty:
            suite = [sys.executable, "-m", "gym_conformance", *(["--quiet"] if quiet else []), "run",
                     "--endpoint", f"{url}/v1", "--tokenizer", str(model), "--conformance-report", str(out),
                     "--hypothesis-profile", profile]
            codes[name] = run_command(suite, cwd=empty).returncode  # inherits the terminal: the run's display
        if (out / "report.json").is_file():
            runs.append(Run(name, load(out / "report.json"), relative_href(out / "report.html", report_dir / "compare.html")))
    compare = None
    if runs:
        compare = write_atomic(report_dir / "compare.html", render_compare_html(runs))
    failures = []
    for run in runs:
        if run.name == "stock-vllm":
            for r in run.report.results:
                if r.outcome == "fail":
                    line = (r.message or (r.evidence.verdict if r.evidence else "") or "").strip().splitlines()
                    failures.append(f"{r.check_id} ({r.requirement.rstrip('.')}): {line[0] if line else 'failed'}")
    return DemoResult(codes, compare, failures)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    quiet = bool(getattr(args, "quiet", False))
    console = Console()
    live = console.is_terminal and not quiet
    model = fixture_path(args.fixture)
    report_dir = args.report_dir.resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    starting = f"demo: starting the reference server and stock vLLM on {args.fixture} (vLLM on CPU: ~1 min) ..."
    if not live and not quiet:
        print(starting, flush=True)
    try:
        with contextlib.ExitStack() as stack:
            urls = {}
            with console.status(starting) if live else contextlib.nullcontext():
                for name in RUNS:
                    port = free_port()
                    server = stack.enter_context(ServerProcess(server_argv(name, model, port, args.fixture), port,
                                                               log_path=report_dir / f"{name}-server.log"))
                    urls[name] = server.url
            result = judge(urls, model, report_dir, profile=args.hypothesis_profile, quiet=quiet)
    except ServerDidNotStart as exc:
        print(f"gym-conformance demo: error: a server did not start: {exc}", file=sys.stderr)
        return 2
    if not quiet:
        print(f"\ndemo: reference exit code {result.codes.get('reference')} (0: every MUST passed); "
              f"stock vLLM exit code {result.codes.get('stock-vllm')}")
        if result.stock_failures:
            print("demo: what stock vLLM gets wrong, one sentence per failing check:")
            for line in result.stock_failures:
                print(f"  - {line}")
        print(f"demo: reports in {report_dir}/reference and {report_dir}/stock-vllm; side by side: "
              f"{result.compare}")
    return result.codes.get("reference", 2)
