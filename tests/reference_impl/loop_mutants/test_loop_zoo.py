"""The loop mutant zoo: one defect file per real-world training-loop bug, each killed by the check it names.

The pure parts check the defect files against the expectation table and the loop; the real thing runs
``gym-conformance selftest --loop`` on the vLLM engine (sharing the session's policy servers and
environments with the GRPO tests) and compares the matrix cell by cell."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conformance._process import run_command
from gym_conformance.selftest_loop import EXPECTATIONS
from reference_impl.loop_mutants import RECIPES, Run, config, discover, reference_name, rows, train_row

ROOT = Path(__file__).resolve().parents[3]
TABLE = json.loads(EXPECTATIONS.read_text())


def test_one_row_per_defect_file_each_killed_by_the_check_it_names():
    mutants = discover()
    assert set(TABLE["mutants"]) == set(mutants)
    for name, mutant in mutants.items():
        row = TABLE["mutants"][name]
        assert mutant.killed_by in row["must_fail"] and row["cause"], name
        assert mutant.task in RECIPES and mutant.summary, name
    assert rows("lookup")[0] == reference_name("lookup") and len(rows("lookup")) > 10


def test_every_patch_replaces_a_name_the_loop_looks_up():
    # a patch of a name reference_impl.grpo.train does not use would leave the loop unchanged: a mutant that
    # is the reference under another name
    from transformers import AutoTokenizer

    from fixtures import fixture_path
    from reference_impl.grpo import train as loop

    for name, mutant in discover().items():
        run = Run(config(mutant.task), AutoTokenizer.from_pretrained(fixture_path(f"warm-{mutant.task}")), loop)
        patches = mutant.module.patches(run)
        assert patches and set(patches) <= set(vars(loop)), name
        assert all(callable(p) for p in patches.values()), name


def test_a_mutant_is_trained_only_on_its_own_task(tmp_path):
    with pytest.raises(ValueError, match="runs on task 'arith'"):
        train_row("loss-sign-flipped", "lookup", tmp_path / "x", model_urls=["http://127.0.0.1:9"],
                  env_url="http://127.0.0.1:9")


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_loop_zoo_matches_the_expectation_table(tmp_path, lookup_policy_vllm, lookup_env, arith_policy_vllm,
                                                    arith_env):
    done = run_command([sys.executable, "-m", "gym_conformance", "--quiet", "selftest", "--loop", "--report-dir",
                        str(tmp_path), "--model-url", f"lookup={lookup_policy_vllm}", "--env-url",
                        f"lookup={lookup_env}", "--model-url", f"arith={arith_policy_vllm}", "--env-url",
                        f"arith={arith_env}"], cwd=ROOT, capture=True, timeout=1400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    matrix = json.loads((tmp_path / "matrix.json").read_text())
    for name in matrix["rows"]:
        failing = {c for c, o in matrix["cells"][name].items() if o == "fail"}
        want = set(TABLE["mutants"][name]["must_fail"]) if name in TABLE["mutants"] else set()
        assert failing == want, name
        assert "error" not in matrix["cells"][name].values(), name
    assert set(matrix["rows"]) == set(rows("lookup")) | set(rows("arith"))
    page = (tmp_path / "index.html").read_text()
    assert "no-refit" in page and "loss-sign-flipped" in page
    # The reference-arith row is issue 11's bounded training test: 30 steps on 4 training rows at a high
    # learning rate; the loop must fit them (a loop that flips its loss's sign does not: the loss-sign-flipped
    # row, B4). The 200-step runs are benchmarks (benchmarks/bench_grpo_curves.py).
    log = [json.loads(x) for x in (tmp_path / "runs" / "reference-arith" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 31))
    first = sum(r["reward_mean"] for r in log[:5]) / 5
    last = sum(r["reward_mean"] for r in log[-5:]) / 5
    assert last >= first + 0.1, f"training reward {first:.3f} -> {last:.3f}"
    assert all(r["rollout_errors"] == r["contiguity_breaks"] == r["nan_logprobs"] == 0 for r in log)
