"""Every endpoint and multi-turn check passes on the reference server and fails on a mutant with the defect it
targets, the pairs read from the committed expectation table (one defect catalogue: reference_impl/mutants).

The zoo runs in process (transformers engine, tiny-chatml, ``httpx.ASGITransport``): the real server code
in well under a second per check. The selftest proves the same table on the vLLM engine over HTTP in CI.
"""
from __future__ import annotations

import json
import re

import pytest

from conformance.checks import CHECKS, LOAD_CHECKS, LoadPlan, run_check, run_load
from conformance.core import CheckFailure, CheckInfo
from gym_conformance.selftest import EXPECTATIONS, LOAD_SESSIONS

TABLE = json.loads(EXPECTATIONS.read_text())["mutants"]
SERVERLESS = {"T1", "T2", "T3", "M17", "M18"}  # template-level: proven on the drift fixtures (test_template.py)


def _variants() -> list[tuple[str, str]]:
    return [(cid, name) for cid, variants in CHECKS.items() for name, _ in variants
            if cid not in SERVERLESS and name != "drift-search"]  # the search has its own tests


# needs a refit to other weights under load on an engine that batches: the selftest does it on vLLM over HTTP (this
# zoo's transformers engine runs one generation at a time, so whether a reload lands mid-generation is luck)
REFIT_UNDER_LOAD = {"refit-mid-generation": "proven by the selftest on vLLM (tests/test_selftest.py); the mutant's "
                                            "own probe is in tests/reference_impl/mutants/test_defects.py"}


def killer(check_id: str) -> str:
    """The most specific mutant the table says this check kills (fewest expected failures, then name)."""
    return min((len(row["must_fail"]), name) for name, row in TABLE.items() if check_id in row["must_fail"])[1]


KILLED = sorted({c for row in TABLE.values() for c in row["must_fail"]} - SERVERLESS,
                key=lambda c: (c[0], int(c[1:])))


@pytest.mark.parametrize("check_id, variant", _variants())
def test_passes_on_the_reference(zoo_ctx, check_id, variant):
    try:
        run_check(zoo_ctx(), check_id, variant)
    except CheckInfo:
        pass  # an observation the contract leaves open (E23 on a MAY)


@pytest.mark.parametrize("mutant", sorted(TABLE))
def test_fails_on_each_mutant_exactly_where_the_table_says(zoo_ctx, mutant):
    """Every check the table lists for this mutant fails (with its own id), and one of them names the cause."""
    ctx, verdicts = zoo_ctx(mutant), []
    if mutant in REFIT_UNDER_LOAD:
        pytest.skip(REFIT_UNDER_LOAD[mutant])
    for check_id in TABLE[mutant]["must_fail"]:
        if check_id in SERVERLESS:
            continue
        with pytest.raises(CheckFailure) as info:
            if check_id in LOAD_CHECKS:  # R10: the selftest's concurrency, on this one mount, kept up for 3 s: the
                # transformers engine answers 16 short calls faster than Gym's retry pause, so one round can miss a
                # queue that overflows; sustained load keeps it full whenever a refused call comes back
                run_load([ctx], LoadPlan(LOAD_SESSIONS, duration=3.0, threshold=LOAD_SESSIONS, turns=2, max_tokens=8))
            else:
                run_check(ctx, check_id)
        failure = info.value
        assert failure.check_id == check_id and failure.evidence.verdict == failure.verdict
        assert failure.evidence.endpoint.endswith(f"/{mutant}/v1")
        verdicts.append(failure.verdict)
    assert any(re.search(TABLE[mutant]["cause"], v) for v in verdicts), verdicts


MULTI = [(cid, name) for cid, name in _variants() if len(CHECKS[cid]) > 1]


@pytest.mark.parametrize("check_id, variant", MULTI)
def test_each_variant_of_a_check_fails_on_some_mutant(zoo_ctx, check_id, variant):
    """A variant no defect ever trips would be a probe that cannot fail."""
    killers = sorted((len(row["must_fail"]), name) for name, row in TABLE.items() if check_id in row["must_fail"])
    for _, mutant in killers:
        try:
            run_check(zoo_ctx(mutant), check_id, variant)
        except CheckFailure:
            return
    pytest.fail(f"{check_id} {variant} passes on every mutant that the table says kills {check_id}")


def test_every_server_check_is_proven_by_a_mutant_or_named_here():
    """A check that cannot fail is a defect: every implemented server-side check is in the table."""
    unproven = {cid for cid, _ in _variants()} - set(KILLED)
    assert unproven == {"E23"}  # INFO tier (MAY): its shape logic is unit-tested in test_error_body.py


def test_continuity_failure_carries_token_diff_and_reproduction(zoo_ctx):
    with pytest.raises(CheckFailure) as info:
        run_check(zoo_ctx("no-correction"), "M3")
    ev = info.value.evidence
    assert ev.token_diff is not None and ev.token_diff.first_diff is not None
    assert ev.token_diff.expected[ev.token_diff.first_diff] != ev.token_diff.actual[ev.token_diff.first_diff]
    assert ev.curl.startswith("curl -sS -X POST http://zoo/no-correction/v1/chat/completions")
    assert ev.request["messages"][1]["generation_token_ids"]
