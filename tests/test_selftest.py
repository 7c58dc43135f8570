"""The selftest's comparison of a mutant × check matrix with the expectation table (pure logic)."""
import pytest

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


def test_the_drift_search_keeps_its_budget_where_it_must_or_may_fail():
    from gym_conformance.selftest import search_profile

    table = {"mutants": {"no-correction": {"must_fail": ["M1", "M3"]}, "flaky": {"must_fail": ["M5"], "may_fail": ["M1"]},
                         "bad-finish-reason": {"must_fail": ["E15"]}}}
    assert [search_profile(n, table, "ci") for n in ("reference", "no-correction", "flaky", "bad-finish-reason")] \
        == ["ci", "ci", "ci", "quick"]
    assert search_profile("bad-finish-reason", table, "deep") == "deep"  # a deliberate deep run stays deep


def test_unlisted_mutant_errors_and_unkilled_check_claims_are_reported():
    m = matrix({"new-mutant": {"E1": "fail", "M1": "error"}})
    problems = compare(m, EXPECT, {})
    assert "new-mutant: no row in the expectation table" in problems
    assert any(p.startswith("E1: listed as killed by no mutant") for p in problems)


def test_every_catalogue_check_is_killed_or_justified_in_the_committed_table():
    import json

    from conformance.core import CATALOGUE
    from gym_conformance.selftest import EXPECTATIONS, uncovered
    from reference_impl.mutants import discover

    table = json.loads(EXPECTATIONS.read_text())
    assert uncovered(table, set(CATALOGUE)) == []
    assert set(table["mutants"]) == set(discover()), "one expectation row per mutant file"
    for name, row in table["mutants"].items():
        assert row["must_fail"] and row["cause"], name


# Defects the contract's catalogue grades SHOULD only: their mutants (named in issue 5) are killed under
# --conformance-strict, never by a MUST check. Pinned here so a new SHOULD-only mutant is a visible decision.
SHOULD_ONLY = {"raw-logprobs": "E20", "usage-wrong": "E6", "overflow-500-under-load": "R10"}


def test_every_mutant_is_killed_by_a_must_check_except_the_should_graded_defects():
    import json

    from conformance.core import CATALOGUE, MUST
    from gym_conformance.selftest import EXPECTATIONS

    table = json.loads(EXPECTATIONS.read_text())
    # R10 is SHOULD in the catalogue (capacity), but what breaks under load (continuity, prompts, weights) fails it
    # as MUST: rows killed that way say so (killed_tier), and the selftest's cause pattern names that failure
    must_killed = {name for name, row in table["mutants"].items()
                   if any(CATALOGUE[c].tier == MUST for c in row["must_fail"]) or row.get("killed_tier") == MUST}
    assert set(table["mutants"]) - must_killed == set(SHOULD_ONLY)
    for name, check in SHOULD_ONLY.items():
        assert table["mutants"][name]["must_fail"] == [check] and "SHOULD" in table["mutants"][name]["note"]


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.timeout(1300)  # run_command's own 1200 s ends it first, killing the self-test and its zoo
def test_the_zoo_on_one_vllm_engine_matches_the_expectation_table():
    # The real thing: the reference and every mutant served by one vLLM engine, the suite run against each
    # mount in strict mode; the matrix (left in reports/selftest/) must equal the committed table.
    import sys
    from pathlib import Path

    from conformance._process import run_command

    out = Path(__file__).resolve().parents[1] / "reports" / "selftest"
    result = run_command([sys.executable, "-m", "gym_conformance", "selftest", "--engine", "vllm",
                          "--report-dir", str(out)], capture=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_sampling_dependent_collateral_is_allowed_only_where_listed():
    table = {"mutants": {"double-eos": {"must_fail": ["M12"], "may_fail": ["M13"], "cause": "doubled"}}}
    m = matrix({"double-eos": {"M12": "fail", "M13": "fail", "M1": "pass"}})
    assert compare(m, table, {"double-eos": {"M12": "separator missing or doubled"}}) == []
    m = matrix({"double-eos": {"M12": "fail", "M13": "pass", "M1": "fail"}})
    assert compare(m, table, {"double-eos": {"M12": "doubled"}}) == ["double-eos: unexpectedly failed ['M1']"]
