"""Token-diff evidence, verdict wording, metrics and the catalogue."""
import math

import pytest

from conformance.checks import CHECKS
from conformance.core import CATALOGUE, CheckFailure, describe_divergence, first_difference, logprob_metrics, \
    log_softmax, prefix_difference, token_diff


def test_first_and_prefix_difference():
    assert first_difference([1, 2, 3], [1, 2, 3]) is None
    assert first_difference([1, 2, 3], [1, 9, 3]) == 1
    assert first_difference([1, 2], [1, 2, 3]) == 2
    assert prefix_difference([1, 2], [1, 2, 3]) is None
    assert prefix_difference([1, 2, 5], [1, 2, 3]) == 2


def test_retokenization_verdict_names_ids_and_position(qwen3_ref):
    expected = [151644, 872, 198, 26951, 3834, 151645]
    actual = [151644, 872, 198, 94224, 151645, 198, 151644, 77091, 198]
    verdict = describe_divergence(expected, actual, 3, decode=qwen3_ref.decode, subject="turn 2 prompt")
    assert verdict.startswith("turn 2 prompt re-tokenized the previous generation: [26951, 3834] became [94224] "
                              "at position 3")


def test_stripping_verdict(qwen3_ref):
    think = qwen3_ref.encode("<think>\nabc\n</think>\n\n")
    expected = [1, 2, 3] + think + [55, 151645]
    actual = [1, 2, 3, 55, 151645, 198]
    verdict = describe_divergence(expected, actual, 3, decode=qwen3_ref.decode)
    assert "dropped part of the previous generation (template stripping?)" in verdict


def test_token_diff_context(qwen3_ref):
    d = token_diff([1, 26951, 3834], [1, 94224, 7], decode=qwen3_ref.decode, prefix=True)
    assert d.first_diff == 1 and "Skinny" in d.expected_context and "Skinny" in d.actual_context


def test_metrics_known_values():
    same = logprob_metrics([-0.5, -1.0], [-0.5, -1.0])
    assert same["token_mult_prob_error"] == 1.0 and same["k3_kl"] == 0.0 and same["max_abs_diff"] == 0.0
    m = logprob_metrics([-1.0], [-0.5])  # Δ = -0.5
    assert m["token_mult_prob_error"] == pytest.approx(math.exp(0.5))
    assert m["k3_kl"] == pytest.approx(math.exp(-0.5) - 1 + 0.5)
    with pytest.raises(ValueError):
        logprob_metrics([-1.0], [])


def test_log_softmax_temperature():
    lp = log_softmax([2.0, 0.0], 0.5)
    assert sum(math.exp(x) for x in lp) == pytest.approx(1.0)
    assert lp[0] == pytest.approx(4.0 - math.log(math.exp(4.0) + 1.0))


def test_catalogue_has_every_contract_id_and_checks_are_catalogued():
    assert {f"E{i}" for i in range(1, 25)} | {f"M{i}" for i in range(1, 28)} <= set(CATALOGUE)
    assert CATALOGUE["M1"].tier == "MUST" and CATALOGUE["M24"].tier == "SHOULD" and CATALOGUE["E20"].tier == "SHOULD"
    assert set(CHECKS) <= set(CATALOGUE)
    for required in ("E1", "E2", "E3", "E4", "E5", "E6", "E7", "E9", "E10", "E11", "E14", "E15", "E16", "E17",
                     "M1", "M3", "M4", "M5", "M11", "M13", "M14", "M15", "M19", "M24", "E20", "T1", "M17"):
        assert required in CHECKS


def test_check_failure_is_an_assertion_error_carrying_catalogue_data():
    f = CheckFailure("M3", "turn 2 prompt re-tokenized")
    assert isinstance(f, AssertionError)
    assert (f.check_id, f.name, f.tier) == ("M3", "multiturn/bpe-retokenization", "MUST")
    assert "MUST" in f.requirement and f.evidence.verdict == "turn 2 prompt re-tokenized"
