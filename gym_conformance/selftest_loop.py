"""``gym-conformance selftest --loop``: the loop checks against the reference loop and every loop mutant.

The loop zoo (``reference_impl/loop_mutants``) trains each row of a task (its reference, then each mutant with
one defect) on shared servers; the suite then judges each row's dumps as a separate ``pytest --rollouts ...``
child process, exactly as a framework's CI would, in strict mode. The row x check matrix must equal the
committed table ``reference_impl/loop_mutants/expectations.json``: each mutant fails exactly its listed
checks (with evidence matching its cause) and the references fail none.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conformance._process import run_command

EXPECTATIONS = Path(__file__).resolve().parents[1] / "reference_impl" / "loop_mutants" / "expectations.json"
TASKS = ("lookup", "arith")
BENCHMARKED = {"arith"}  # tasks with a committed reference band (conformance/curves/<task>.json)


def _urls(pairs: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        task, sep, url = pair.partition("=")
        if not sep or task not in TASKS:
            raise ValueError(f"{flag} takes TASK=URL with TASK one of {', '.join(TASKS)} (got {pair!r})")
        out[task] = url
    return out


def _train(task: str, out: Path, only: list[str] | None, engine: str, model_url: str | None,
           env_url: str | None) -> int:
    cmd = [sys.executable, "-m", "reference_impl.loop_mutants", "--task", task, "--out", str(out / "runs"),
           "--engine", engine]
    cmd += [a for name in only or [] for a in ("--only", name)]
    if model_url and env_url:
        cmd += ["--model-url", model_url, "--env-url", env_url]
    return run_command(cmd, cwd=Path(__file__).resolve().parents[1], log_path=out / f"train-{task}.log",
                       timeout=1500).returncode


def _judge(name: str, task: str, out: Path) -> int:
    from fixtures import fixture_path

    run = out / "runs" / name
    with tempfile.TemporaryDirectory(prefix="gym-conformance-selftest-loop-") as empty:
        cmd = [sys.executable, "-m", "pytest", "--rollouts", str(run / "rollouts.jsonl"),
               "--train-batches", str(run / "train_batches.jsonl"), "--metrics", str(run / "metrics.jsonl"),
               "--tokenizer", str(fixture_path(f"warm-{task}")), "--conformance-report", str(out / name),
               "--conformance-strict", "-p", "no:cacheprovider", "-q", "--no-header"]
        if task in BENCHMARKED:
            cmd += ["--benchmark", task]
        return run_command(cmd, cwd=empty, log_path=out / f"{name}.log", timeout=600).returncode


def run(args: argparse.Namespace) -> int:
    from gym_conformance.selftest import collect, compare, uncovered
    from reference_impl.loop_mutants import reference_name, rows

    def fail(message: str) -> int:
        print(f"gym-conformance selftest --loop: error: {message}", file=sys.stderr)
        return 2

    try:
        expectations = json.loads(args.expectations.read_text())
        model_urls, env_urls = _urls(args.model_url, "--model-url"), _urls(args.env_url, "--env-url")
    except (OSError, ValueError) as exc:
        return fail(str(exc))
    quiet = bool(getattr(args, "quiet", False))
    every = {task: rows(task) for task in TASKS}
    known = {name for names in every.values() for name in names}
    unknown = sorted(set(args.only or []) - known)
    if unknown:
        return fail(f"unknown row {unknown[0]!r}; rows: {', '.join(sorted(known))}")
    plan = {task: [n for n in names if not args.only or n in args.only] for task, names in every.items()}
    plan = {task: names for task, names in plan.items() if names}
    out = args.report_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    codes: dict[str, int] = {}
    for task, names in plan.items():
        t0 = time.monotonic()
        code = _train(task, out, args.only, args.engine, model_urls.get(task), env_urls.get(task))
        if not quiet:
            print(f"selftest --loop: trained {len(names)} {task} rows in {time.monotonic() - t0:.0f}s (exit {code}; "
                  f"log {out / f'train-{task}.log'})", flush=True)
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            codes.update(zip(names, pool.map(lambda n, t=task: _judge(n, t, out), names)))
    names = [n for names in plan.values() for n in names]
    reports, messages, matrix = collect(names, codes, out, label="selftest --loop", row_label="loop row")
    references = {reference_name(task) for task in TASKS}
    if reports:  # the HTML report: the first reference's report with the whole matrix as a section
        from conformance.report.html import write_html

        first = next((n for n in names if n in references and n in reports), next(iter(reports)))
        write_html(reports[first], out / "index.html", matrix=matrix)
    problems = compare(matrix, expectations, messages, references=references)
    problems += [f"{n}: no report" for n in names if n not in reports]
    if not args.only:
        from conformance.checks.loop import CURVE_CHECKS, LOOP_CHECKS

        problems += [f"{c}: killed by no loop mutant and not justified in unkilled_checks"
                     for c in uncovered(expectations, set(LOOP_CHECKS) | set(CURVE_CHECKS))]
    if not quiet:
        print((out / "matrix.md").read_text())
    for line in problems:
        print(f"selftest --loop: MISMATCH {line}")
    verdict = "matrix matches the expectation table" if not problems else f"{len(problems)} mismatches"
    print(f"selftest --loop: {len(names)} rows in {time.monotonic() - start:.0f}s; {verdict}; reports: {out}")
    return 0 if not problems else 1
