"""``gym-conformance selftest --loop``: the expectation table against the catalogue, and bad arguments.

The real run (every row trained on the vLLM engine, the matrix compared) is in
tests/reference_impl/loop_mutants/test_loop_zoo.py, beside the servers it shares with the GRPO tests."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conformance._process import run_command
from gym_conformance.selftest import uncovered
from gym_conformance.selftest_loop import EXPECTATIONS

ROOT = Path(__file__).resolve().parents[1]
TABLE = json.loads(EXPECTATIONS.read_text())


def test_every_loop_and_benchmark_check_is_killed_or_justified():
    from conformance.checks.loop import CURVE_CHECKS, LOOP_CHECKS

    assert uncovered(TABLE, set(LOOP_CHECKS) | set(CURVE_CHECKS)) == []
    assert not set(TABLE["unkilled_checks"]) & {c for row in TABLE["mutants"].values() for c in row["must_fail"]}


@pytest.mark.parametrize("argv, needle", [
    (["--only", "no-such-row"], "unknown row 'no-such-row'"),
    (["--model-url", "http://127.0.0.1:9"], "TASK=URL"),
])
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, argv, needle):
    done = run_command([sys.executable, "-m", "gym_conformance", "selftest", "--loop", "--report-dir",
                        str(tmp_path), *argv], cwd=ROOT, capture=True, timeout=120)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and needle in lines[0], done.stderr
