"""The vocabulary search finds both canary kinds (P01 merge, P02 different split) in both fixture vocabularies."""
import pytest

from conformance.checks import Reference
from fixtures import fixture_path


@pytest.mark.parametrize("name", ["tiny-chatml", "tiny-qwen3"])
def test_merge_and_different_split_cases_are_found(name):
    ref = Reference(str(fixture_path(name)))
    merge, different = ref.splits
    assert merge is not None and len(merge.canonical) == 1 and len(merge.sampled) == 2
    assert different is not None and len(different.canonical) == 2 and different.canonical != different.sampled
    for split in (merge, different):
        assert ref.decode(list(split.sampled)) == split.text and ref.encode(split.text) == list(split.canonical)


def test_qwen3_merge_case_is_the_nemo_rl_golden_case():
    merge, _ = Reference(str(fixture_path("tiny-qwen3"))).splits
    assert (merge.text, merge.sampled, merge.canonical) == (" Skinny", (26951, 3834), (94224,))


def test_the_gc_freeze_ends_with_the_session(runner):
    """Loading the reference tokenizer freezes the heap for speed; closing the session's context undoes it, so
    the user's own pytest process collects normally afterwards."""
    import gc

    from conformance.checks import Context, Target
    from fixtures import fixture_path

    ctx = Context(Target("http://unused/v1", tokenizer=str(fixture_path("tiny-chatml"))), runner)
    assert ctx.reference is not None and gc.get_freeze_count() > 0
    runner.run(ctx.aclose())
    assert gc.get_freeze_count() == 0
