"""The hypothesis drift search: passes on a splicing endpoint, finds and shrinks a continuity failure on a
re-tokenizing one, and stores the minimal conversation with the evidence."""
import pytest
from hypothesis import settings

from conformance.checks import run_check
from conformance.checks.drift import resplit
from conformance.core import CheckFailure


@pytest.fixture(autouse=True)
def _ci_profile():
    import conformance.strategies  # noqa: F401  registers the profiles
    previous = settings._current_profile
    settings.load_profile("ci")
    yield
    settings.load_profile(previous)


def test_resplit_keeps_the_text_and_changes_the_ids(chatml_ref):
    ids = chatml_ref.encode("Please answer")
    split = resplit(chatml_ref, ids, list(range(len(ids))))
    assert split != ids and chatml_ref.decode(split) == chatml_ref.decode(ids)


def test_passes_on_a_splicing_endpoint(zoo_ctx):
    run_check(zoo_ctx(), "M1", "drift-search")


def test_finds_and_shrinks_retokenization(zoo_ctx):
    ctx = zoo_ctx("no-correction")
    ctx.hypothesis_seed = 0  # the same examples in every process (xdist workers included)
    with pytest.raises(CheckFailure) as info:
        run_check(ctx, "M1", "drift-search")
    hyp = info.value.evidence.hypothesis
    assert hyp is not None and hyp["example"][0]["role"] == "user"
    assistants = [t for t in hyp["example"] if t["role"] == "assistant"]
    assert len(assistants) == 1  # shrunk to one supplied generation
    assert ctx.drift_stats["first_failure"] is not None and ctx.drift_stats["first_failure"] <= 12
    metrics = info.value.evidence.metrics  # how the search got there, for the report's plot
    assert metrics["first_failing_example"] == ctx.drift_stats["first_failure"]
    assert metrics["examples_tried"] == metrics["first_failing_example"] + metrics["shrink_steps"]


def test_seed_is_honoured(zoo_ctx):
    ctx = zoo_ctx("no-correction")
    ctx.hypothesis_seed = 1234
    with pytest.raises(CheckFailure) as info:
        run_check(ctx, "M1", "drift-search")
    assert info.value.evidence.hypothesis["seed"] == 1234
