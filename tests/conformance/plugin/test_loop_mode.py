"""``pytest --rollouts PATH --train-batches PATH``: the loop checks through the same plugin, report and exit codes
as the endpoint checks, with no endpoint at all."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from conformance._process import run_command
from conformance.checks.loop import ESTIMATORS, TRUNCATION
from conformance.plugin._settings import LOOP_ESTIMATORS, LOOP_TRUNCATION

pytest_plugins = ["pytester"]
DUMPS = Path(__file__).resolve().parents[3] / "fixtures" / "dumps" / "lookup"
ROLLOUTS, BATCHES = str(DUMPS / "rollouts.jsonl"), str(DUMPS / "train_batches.jsonl")


def _report(pytester) -> dict:
    return json.loads((pytester.path / "reports" / "report.json").read_text())


def test_the_reference_dumps_pass_every_loop_check(pytester):
    result = pytester.runpytest("--rollouts", ROLLOUTS, "--train-batches", BATCHES, "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()[-2000:]
    report = _report(pytester)
    assert report["target"]["endpoints"] == [] and report["target"]["dumps"] == {"rollouts": ROLLOUTS,
                                                                                   "batches": BATCHES}
    by = {r["check_id"]: r for r in report["results"]}
    assert {c for c, r in by.items() if r["outcome"] == "pass"} == {"L1", "L2", "R1", "R2", "R3", "R4", "R5", "R6",
                                                                    "R8", "R9", "R11", "R12", "R14"}
    assert {c for c, r in by.items() if r["outcome"] == "skipped"} == {"B1", "B2", "B3", "B4", "L3"}  # no --metrics
    assert all(r["variant"] == "dumps" for r in by.values())


def test_a_defect_fails_its_check_with_the_line_named(pytester, tmp_path):
    lines = [json.loads(x) for x in Path(BATCHES).read_text().splitlines()]
    for line in lines:
        line["old_log_probs"] = list(line["trainer_log_probs"])  # recomputed instead of served
    bad = tmp_path / "batches.jsonl"
    bad.write_text("".join(json.dumps(x) + "\n" for x in lines))
    result = pytester.runpytest("--rollouts", ROLLOUTS, "--train-batches", str(bad), "-p", "no:cacheprovider")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*R11 loop/old-logprobs-served [[]MUST[]] *recomputed, not served*"])
    failed = [r for r in _report(pytester)["results"] if r["outcome"] == "fail"]
    assert [r["check_id"] for r in failed] == ["R11"]
    assert failed[0]["evidence"]["endpoint"] == f"{bad}:1"


def test_only_rollouts_skips_the_training_checks_with_the_reason(pytester):
    result = pytester.runpytest("--rollouts", ROLLOUTS, "-p", "no:cacheprovider", "-rs")
    assert result.ret == 0
    skipped = {r["check_id"]: r["message"] for r in _report(pytester)["results"] if r["outcome"] == "skipped"}
    assert set(skipped) == {"L1", "L2", "R4", "R8", "R11", "R14", "B1", "B2", "B3", "B4", "L3"}
    assert all("--train-batches" in skipped[c] for c in ("L1", "L2", "R4", "R8", "R11", "R14"))
    assert all("--metrics" in skipped[c] for c in ("B1", "B2", "B3", "B4", "L3"))


def test_a_broken_dump_is_one_line_exit_2_and_a_report(pytester, tmp_path):
    broken = tmp_path / "rollouts.jsonl"
    broken.write_text(Path(ROLLOUTS).read_text() + '{"schema": "gym-conformance/rollouts/9"}\n')
    result = pytester.runpytest("--rollouts", str(broken), "-p", "no:cacheprovider")
    assert result.ret == 2
    report = _report(pytester)
    assert report["summary"]["verdict"] == "error"
    assert report["results"][-1]["message"] == (f"{broken}:17: schema 'gym-conformance/rollouts/9' is not one this "
                                                "version of gym-conformance reads (it reads "
                                                "'gym-conformance/rollouts/1')")


def test_the_command_judges_dumps_and_names_bad_options(tmp_path):
    base = [sys.executable, "-m", "gym_conformance", "run", "--quiet", "--report", str(tmp_path / "r")]
    ok = run_command([*base, "--rollouts", ROLLOUTS, "--train-batches", BATCHES], capture=True, timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    for extra, needle in ((["--train-batches", BATCHES], "--train-batches needs --rollouts"),
                          ([], "nothing to judge"),
                          (["--rollouts", str(tmp_path / "none.jsonl")], "is not a file"),
                          (["--rollouts", ROLLOUTS, "--loop-advantage", "ppo"], "invalid choice: 'ppo'")):
        done = run_command([*base, *extra], capture=True, timeout=300)
        assert done.returncode == 2 and needle in done.stderr and "Traceback" not in done.stderr, (extra, done.stderr)


def test_metrics_are_judged_against_a_benchmark(pytester, tmp_path):
    from conformance.checks.loop.curves import CURVES

    run = json.loads((CURVES / "arith.json").read_text())["seeds"]["0"]
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps({"step": i, "reward_mean": r}) + "\n"
                               for i, r in enumerate(run["reward_mean"], 1)))
    result = pytester.runpytest("--metrics", str(metrics), "--benchmark", "arith", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()[-2000:]
    outcomes = {r["check_id"]: r["outcome"] for r in _report(pytester)["results"]}
    assert outcomes["L3"] == outcomes["B3"] == outcomes["B4"] == "pass" and outcomes["R1"] == "skipped"
    flat = tmp_path / "flat.jsonl"
    flat.write_text("".join(json.dumps({"step": i, "reward_mean": 0.42}) + "\n" for i in range(1, 201)))
    assert pytester.runpytest("--metrics", str(flat), "--benchmark", "arith", "-p", "no:cacheprovider").ret == 1
    assert pytester.runpytest("--metrics", str(flat), "--benchmark", "chess", "-p", "no:cacheprovider").ret == 2


def test_a_dump_from_another_tokenizer_is_named(pytester):
    from fixtures import fixture_path

    # in subprocesses: torch (under transformers) cannot be imported again once pytester restored sys.modules
    same = pytester.runpytest_subprocess("--rollouts", ROLLOUTS, "--tokenizer", str(fixture_path("warm-lookup")),
                                         "-p", "no:cacheprovider")
    assert same.ret == 0, same.stdout.str()[-1500:]
    other = pytester.runpytest_subprocess("--rollouts", ROLLOUTS, "--tokenizer", str(fixture_path("tiny-qwen3")),
                                          "-p", "no:cacheprovider")
    assert other.ret == 2
    message = _report(pytester)["results"][-1]["message"]
    assert message.startswith(f"{ROLLOUTS}:1: the first prompt decodes to none of its step's row texts")
    # rows mixed up within a step are R6's finding, not a tokenizer mismatch (first misnamed so, by the loop zoo)
    lines = [json.loads(x) for x in Path(ROLLOUTS).read_text().splitlines()]
    step = [r for r in lines if r["step"] == 1]
    rows = [(r["row"], r["row_index"]) for r in step]
    for r, (row, index) in zip(step, rows[1:] + rows[:1]):
        r["row"], r["row_index"] = row, index
    shifted = pytester.path / "shifted.jsonl"
    shifted.write_text("".join(json.dumps(x) + "\n" for x in lines))
    mixed = pytester.runpytest_subprocess("--rollouts", str(shifted), "--tokenizer", str(fixture_path("warm-lookup")),
                                          "-p", "no:cacheprovider")
    assert mixed.ret == 1, mixed.stdout.str()[-1500:]
    assert {r["check_id"] for r in _report(pytester)["results"] if r["outcome"] == "fail"} == {"R6"}


def test_the_declared_choices_are_the_checks_own():
    assert LOOP_ESTIMATORS == ESTIMATORS and LOOP_TRUNCATION == TRUNCATION
