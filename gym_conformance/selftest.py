"""``gym-conformance selftest``: run the suite against the reference and every mutant; check the matrix.

The mutant zoo (``reference_impl/mutants``) is served from one process and one engine; the suite runs
against each mount as a separate ``pytest --endpoint`` child process, exactly as a framework's CI would
run it, in strict mode (SHOULD-level failures count). The resulting mutant × check matrix must equal
the committed expectation table (``reference_impl/mutants/expectations.json``): every mutant fails
exactly its listed checks (plus, at most, its ``may_fail`` checks: collateral failures that depend on what
the model samples), with evidence matching the listed cause, and the reference fails none.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from conformance._process import ServerDidNotStart, ServerProcess, free_port, run_command
from conformance.report import ReportError, load
from conformance.report.matrix import Matrix, build_matrix, render_matrix_markdown

EXPECTATIONS = Path(__file__).resolve().parents[1] / "reference_impl" / "mutants" / "expectations.json"
REFERENCE = "reference"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--loop", action="store_true",
                        help="the loop zoo instead: train the reference loop and each loop mutant, judge their "
                             "dumps with the loop checks (reference_impl/loop_mutants)")
    parser.add_argument("--engine", choices=["vllm", "hf"], default="vllm",
                        help="engine the shared zoo runs on (default vllm; hf starts faster)")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only these mutants (repeatable)")
    parser.add_argument("--report-dir", type=Path,
                        help="per-mutant reports, matrix.json, matrix.md (and index.html with --loop) go here "
                             "(default reports/selftest, or reports/selftest-loop with --loop)")
    parser.add_argument("--jobs", type=int, default=2, help="suites run concurrently against the zoo (default 2)")
    parser.add_argument("--expectations", type=Path,
                        help="the expectation table (default reference_impl/mutants/expectations.json, or "
                             "reference_impl/loop_mutants/expectations.json with --loop)")
    parser.add_argument("--hypothesis-profile", default="ci", choices=["ci", "quick", "deep"],
                        help="the drift search's profile for the reference and the mutants M1 must or may fail "
                             "(the others run quick under ci)")
    parser.add_argument("--model-url", action="append", metavar="TASK=URL",
                        help="--loop: a running reference server with TASK's warm-start policy (repeatable)")
    parser.add_argument("--env-url", action="append", metavar="TASK=URL",
                        help="--loop: TASK's running environment (with --model-url)")


def compare(matrix: Matrix, expectations: dict[str, Any], messages: dict[str, dict[str, str]], *,
            references: set[str] = frozenset({REFERENCE})) -> list[str]:
    """Every difference between the matrix and the expectation table, as one line each (empty: all met).

    ``messages[row][check_id]`` is the failing result's message + verdict text, matched against the
    mutant's ``cause`` pattern so a mutant killed for the wrong reason does not count. ``references``: the
    rows that must fail nothing.
    """
    problems = []
    table = {**{name: {"must_fail": []} for name in references}, **expectations["mutants"]}
    for row in matrix.rows:
        if row not in table:
            problems.append(f"{row}: no row in the expectation table")
            continue
        want, got = set(table[row]["must_fail"]), matrix.failing(row)
        if want - got:
            problems.append(f"{row}: expected to fail {sorted(want - got)} but they passed or did not run")
        # may_fail: collateral failures that depend on what the model samples (listed, each with the reason)
        unexpected = got - want - set(table[row].get("may_fail", []))
        if unexpected:
            problems.append(f"{row}: unexpectedly failed {sorted(unexpected)}")
        if "error" in set(matrix.cells.get(row, {}).values()):
            problems.append(f"{row}: some checks could not run (outcome error)")
        cause = table[row].get("cause")
        if cause and want & got and not any(re.search(cause, messages.get(row, {}).get(c, ""), re.I)
                                            for c in want & got):
            problems.append(f"{row}: none of the failures names the cause /{cause}/")
    for check, why in expectations.get("unkilled_checks", {}).items():
        if any(check in matrix.failing(r) for r in matrix.rows if r not in references):
            problems.append(f"{check}: listed as killed by no mutant ({why}) but a mutant failed it")
    return problems


def collect(names: list[str], codes: dict[str, int], out: Path, *, label: str, row_label: str = "endpoint"):
    """(reports, failing messages, matrix) of the rows' ``report.json`` under ``out``; writes matrix.json and
    matrix.md. ``messages[row][check_id]`` is a failure's message + verdict, what a ``cause`` is matched with;
    a row without a usable report is named on stdout and left out."""
    reports, messages = {}, {}
    for name in names:
        try:
            report = load(out / name / "report.json")
        except (OSError, ReportError) as exc:
            print(f"{label}: {name}: no usable report (suite exit {codes.get(name)}): {exc}; see "
                  f"{out / (name + '.log')}")
            continue
        reports[name] = report
        messages[name] = {r.check_id: f"{r.message or ''} {r.evidence.verdict if r.evidence else ''}"
                          for r in report.results if r.outcome == "fail"}
    matrix = build_matrix(reports)
    (out / "matrix.json").write_text(json.dumps(matrix.to_dict(), indent=2) + "\n")
    (out / "matrix.md").write_text(render_matrix_markdown(matrix, row_label=row_label) + "\n")
    return reports, messages, matrix


def uncovered(expectations: dict[str, Any], catalogue: set[str]) -> list[str]:
    """Catalogue ids that no mutant is expected to kill and that the table does not justify either."""
    killed = {c for row in expectations["mutants"].values() for c in row["must_fail"]}
    return sorted(catalogue - killed - set(expectations.get("unkilled_checks", {})))


def search_profile(name: str, expectations: dict[str, Any], profile: str) -> str:
    """The drift search's (M1's) budget for one row. The reference and every mutant M1 must or may fail get the
    chosen profile; for the others M1 only has to stay quiet, and the reference's full run is already the
    false-alarm test, so the derandomized ``ci`` budget drops to ``quick`` there (it was 70% of the zoo's time)."""
    row = expectations["mutants"].get(name, {})
    if profile != "ci" or name == REFERENCE or "M1" in set(row.get("must_fail", [])) | set(row.get("may_fail", [])):
        return profile
    return "quick"


LOAD_SESSIONS = 16  # R10 in the zoo: enough concurrency to overflow a queue of 8 and to race a shared buffer
LOAD_SECONDS = 4    # ... kept up this long: one round of 16 short rollouts can drain a queue of 8 within Gym's 0.5 s
                    # retry pause, and an overflow then goes unseen


def _run_suite(name: str, url: str, tokenizer: Path, out: Path, profile: str, *, weights: Path | None = None,
               extra: tuple[str, ...] = ()) -> int:
    """One ``pytest --endpoint`` child against a mount; ``weights``: what R8 and R10's refit load (default: the
    served fixture itself)."""
    with tempfile.TemporaryDirectory(prefix="gym-conformance-selftest-") as empty:
        cmd = [sys.executable, "-m", "pytest", "--endpoint", f"{url}/{name}/v1", "--model", "tiny",
               "--tokenizer", str(tokenizer), "--rescore-model", str(weights or tokenizer),
               "--refit-url", f"{url}/{name}/weights/reload",
               "--conformance-report", str(out / name), "--conformance-strict",
               "--hypothesis-profile", profile, "-p", "no:cacheprovider", "-q", "--no-header", *extra]
        return run_command(cmd, cwd=empty, log_path=out / f"{name}.log").returncode


def _load_args(sessions: int = LOAD_SESSIONS) -> tuple[str, ...]:
    return ("--load", str(sessions), "--load-threshold", str(sessions), "--load-duration", str(LOAD_SECONDS))


def _run_load_rows(names: list[str], url: str, tokenizer: Path, out: Path, other_weights: Path) -> dict[str, int]:
    """The mutants only load shows (expectations ``load``), one at a time after the others: R10 alone, refitting the
    shared engine to ``other_weights`` halfway through, then back to the fixture's weights for whatever comes next."""
    codes = {}
    for name in names:
        try:
            codes[name] = _run_suite(name, url, tokenizer, out, "quick", weights=other_weights,
                                     extra=("--check", "R10", *_load_args()))
        finally:
            httpx.post(f"{url}/{REFERENCE}/weights/reload", json={"path": str(tokenizer)}, timeout=300)
    return codes


def run(args: argparse.Namespace) -> int:
    if args.loop:
        from . import selftest_loop

        args.report_dir = args.report_dir or Path("reports/selftest-loop")
        args.expectations = args.expectations or selftest_loop.EXPECTATIONS
        return selftest_loop.run(args)
    if args.model_url or args.env_url:
        print("gym-conformance selftest: error: --model-url and --env-url belong to --loop", file=sys.stderr)
        return 2
    args.report_dir = args.report_dir or Path("reports/selftest")
    args.expectations = args.expectations or EXPECTATIONS
    from rich.console import Console

    from fixtures import fixture_path

    try:
        expectations = json.loads(args.expectations.read_text())
    except (OSError, ValueError) as exc:
        print(f"gym-conformance selftest: error: cannot read {args.expectations}: {exc}", file=sys.stderr)
        return 2
    quiet = bool(getattr(args, "quiet", False))
    console = Console()
    live = console.is_terminal and not quiet  # otherwise plain lines: CI logs stay clean
    out = args.report_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = fixture_path("tiny-chatml")
    port = free_port()
    from reference_impl.mutants.defects.stale_weights import previous_checkpoint

    other_weights = previous_checkpoint(tokenizer)  # the load rows' refit target: weights the fixture's are not
    host = [sys.executable, "-m", "reference_impl.mutants", "--engine", args.engine, "--port", str(port),
            "--served-model-name", "tiny", "--reasoning-parser", "qwen3", "--tool-parser", "hermes",
            "--weights-root", str(other_weights.parent)]
    start = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            with console.status(f"selftest: starting the mutant zoo on the {args.engine} engine ...") if live \
                    else contextlib.nullcontext():
                zoo = stack.enter_context(ServerProcess(host, port, log_path=out / "zoo-server.log"))
            listing = httpx.get(f"{zoo.url}/mutants", timeout=10).json()
            names = [REFERENCE] + [m["name"] for m in listing["mutants"]]
            unknown = set(args.only or []) - set(names)
            if unknown:
                print(f"gym-conformance selftest: error: unknown mutant {sorted(unknown)[0]!r}", file=sys.stderr)
                return 2
            names = [n for n in names if not args.only or n in args.only]
            load_rows = [n for n in names if expectations["mutants"].get(n, {}).get("load")]
            if not quiet:
                print(f"selftest: zoo up in {time.monotonic() - start:.0f}s; running the suite on {len(names)} "
                      "endpoints", flush=True)
            with _Progress(console, len(names), live=live, quiet=quiet) as progress:
                def one(name: str) -> int:
                    progress.started(name)
                    code = _run_suite(name, zoo.url, tokenizer, out,
                                      search_profile(name, expectations, args.hypothesis_profile),
                                      extra=_load_args() if name == REFERENCE else ())
                    progress.finished(name, code)
                    return code
                with ThreadPoolExecutor(max(1, args.jobs)) as pool:
                    rows = [n for n in names if n not in load_rows]
                    codes = dict(zip(rows, pool.map(one, rows)))
                for name in load_rows:
                    progress.started(name)
                    codes.update(_run_load_rows([name], zoo.url, tokenizer, out, other_weights))
                    progress.finished(name, codes[name])
    except ServerDidNotStart as exc:
        print(f"gym-conformance selftest: error: the mutant zoo did not start: {exc}", file=sys.stderr)
        return 2
    reports, messages, matrix = collect(names, codes, out, label="selftest")
    problems = compare(matrix, expectations, messages)
    problems += [f"{n}: no report" for n in names if n not in reports]
    if not args.only:
        from conformance.core import CATALOGUE
        problems += [f"{c}: killed by no mutant and not justified in unkilled_checks"
                     for c in uncovered(expectations, set(CATALOGUE))]
    verdict = (f"{len(names)} endpoints in {time.monotonic() - start:.0f}s; "
               f"{'matrix matches the expectation table' if not problems else f'{len(problems)} mismatches'}")
    if live:
        _render(console, matrix, names, codes, problems, expectations, verdict, out)
    else:
        if not quiet:
            print(render_matrix_markdown(matrix))
        for line in problems:
            print(f"selftest: MISMATCH {line}")
        print(f"selftest: {verdict}")
    return 0 if not problems else 1


class _Progress:
    """A progress bar over the endpoints (rich, on a terminal) or one plain line per finished endpoint."""

    def __init__(self, console: Any, total: int, *, live: bool, quiet: bool) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn)
        self.live, self.quiet, self.total, self.done = live, quiet, total, 0
        self.running: list[str] = []
        self.lock = threading.Lock()
        self.bar = Progress(SpinnerColumn(), TextColumn("selftest"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("{task.fields[current]}"), console=console)
        self.task = self.bar.add_task("endpoints", total=total, current="")

    def __enter__(self) -> "_Progress":
        if self.live:
            self.bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.stop()

    def started(self, name: str) -> None:
        with self.lock:
            self.running.append(name)
            self.bar.update(self.task, current=", ".join(self.running))

    def finished(self, name: str, code: int) -> None:
        with self.lock:
            self.running.remove(name)
            self.done += 1
            self.bar.update(self.task, advance=1, current=", ".join(self.running))
            if not self.live and not self.quiet:
                print(f"selftest: [{self.done}/{self.total}] {name}: suite exit {code}", flush=True)


def _render(console: Any, matrix: Matrix, names: list[str], codes: dict[str, int], problems: list[str],
            expectations: dict[str, Any], verdict: str, out: Path) -> None:
    """The end-of-run summary on a terminal: one row per endpoint (what it failed, whether that was expected)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="selftest: the suite against the reference and every mutant", title_justify="left")
    for column, kw in (("endpoint", {"no_wrap": True}), ("suite exit", {"justify": "right"}),
                       ("failed checks", {"ratio": 1}), ("as expected", {})):
        table.add_column(column, **kw)
    for name in names:
        mine = [p.split(": ", 1)[1] for p in problems if p.startswith(f"{name}: ")]
        failed = ", ".join(sorted(matrix.failing(name), key=_natural)) or "-"
        expected = Text("yes", style="green") if not mine else Text("; ".join(mine), style="bold red")
        table.add_row(name, str(codes.get(name, "-")), failed, expected)
    console.print(table)
    for line in problems:
        if not any(line.startswith(f"{n}: ") for n in names):
            console.print(Text(f"MISMATCH {line}", style="bold red"))
    style = "bold green" if not problems else "bold red"
    console.print(Text(f"selftest: {verdict}", style=style))
    for path in (out / "matrix.md", out / "matrix.json", out):
        console.print(f"{'reports' if path == out else path.suffix[1:]}: {path}", markup=False, highlight=False)


def _natural(check_id: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", check_id)]
