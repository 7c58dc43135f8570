"""The selftest's comparison of a mutant × check matrix with the expectation table (pure logic)."""
from conformance.report.matrix import Matrix
from gym_conformance.selftest import compare

EXPECT = {"mutants": {"no-correction": {"must_fail": ["M1", "M3"], "cause": "re-tokeni"}},
          "unkilled_checks": {"E1": "every endpoint answers /v1/models"}}


def matrix(cells):
    columns = sorted({c for row in cells.values() for c in row})
    return Matrix(list(cells), columns, cells, {c: {"name": c, "tier": "MUST"} for c in columns})


def test_met_expectations_give_no_problems():
    m = matrix({"reference": {"M1": "pass", "M3": "pass"}, "no-correction": {"M1": "fail", "M3": "fail"}})
    msgs = {"no-correction": {"M1": "turn 2 prompt re-tokenized the previous generation", "M3": ""}}
    assert compare(m, EXPECT, msgs) == []


def test_missing_kill_unexpected_failure_and_reference_failure_are_reported():
    m = matrix({"reference": {"M1": "fail"}, "no-correction": {"M1": "fail", "M3": "pass", "E6": "fail"}})
    problems = compare(m, EXPECT, {"no-correction": {"M1": "re-tokenized", "E6": "usage"}})
    assert "reference: unexpectedly failed ['M1']" in problems
    assert "no-correction: expected to fail ['M3'] but they passed or did not run" in problems
    assert "no-correction: unexpectedly failed ['E6']" in problems


def test_a_kill_for_the_wrong_reason_does_not_count():
    m = matrix({"no-correction": {"M1": "fail", "M3": "fail"}})
    problems = compare(m, EXPECT, {"no-correction": {"M1": "HTTP 500", "M3": "timeout"}})
    assert problems == ["no-correction: none of the failures names the cause /re-tokeni/"]


def test_unlisted_mutant_errors_and_unkilled_check_claims_are_reported():
    m = matrix({"new-mutant": {"E1": "fail", "M1": "error"}})
    problems = compare(m, EXPECT, {})
    assert "new-mutant: no row in the expectation table" in problems
    assert any(p.startswith("E1: listed as killed by no mutant") for p in problems)
