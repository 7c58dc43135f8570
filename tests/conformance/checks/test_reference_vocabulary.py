"""Ids the reference tokenizer does not have: decoded visibly (never dropped silently, never an OverflowError), and
a check that fails on a call holding ids the model cannot have produced names them as the cause."""
import json

from conformance.checks import Context, Target
from conformance.checks._reference import model_vocab_size
from conformance.client import Bundle, ChatCall, GymClient
from conformance.core import token_diff

CAUSE = "ids out of the tokenizer's vocabulary: "
FOREIGN = [100000 + 197 * b for b in b"Hi"] + [151645]  # the hostile zoo's foreign-vocab endpoint spells "Hi" so


def test_decode_shows_each_id_the_tokenizer_does_not_have(chatml_ref):
    ref = chatml_ref
    hello = ref.encode("Hello")
    assert ref.size == 1000 and ref.decode(hello) == "Hello"
    # Hugging Face drops these silently: the text would read as if the ids were not there
    assert ref.decode([*hello, 151644, *hello]) == "Hello⟨unknown id 151644⟩Hello"
    assert ref.decode([1000]) == "⟨unknown id 1000⟩"  # a padding row (a model can sample it): no text either
    for bad in (-1, 2**40, 10**30):  # the tokenizer's own decode raises OverflowError on these
        assert ref.decode([bad]) == f"⟨unknown id {bad}⟩"
    assert ref.decode(FOREIGN, skip_special_tokens=True).count("⟨unknown id") == 3
    # what a server's detokenizer shows of them (E7 compares with that): nothing, and no crash either
    assert ref.decode([*hello, 1003, -1, 2**40, *hello], unknown="drop") == "HelloHello"
    assert ref.piece(151644) is None and ref.piece(-1) is None and ref.piece(hello[0]) is not None


def test_outside_lists_positions_and_ids_past_a_limit(chatml_ref):
    assert chatml_ref.outside([5, 1000, -1, 3]) == [(1, 1000), (2, -1)]
    assert chatml_ref.outside([5, 1000, 1023, 1024], 1024) == [(3, 1024)]
    assert chatml_ref.outside([]) == []


def test_model_vocab_size_reads_config_json(tmp_path, chatml_ref):
    assert chatml_ref.model_vocab_size == 1024  # tiny-chatml: 1,000 tokenizer ids, 1,024 embedding rows
    (tmp_path / "config.json").write_text(json.dumps({"text_config": {"vocab_size": 7}}))
    assert model_vocab_size(None, str(tmp_path / "missing"), str(tmp_path)) == 7
    (tmp_path / "config.json").write_text("not json")
    assert model_vocab_size(str(tmp_path)) is None


def _ctx(runner, ref=None, **target):
    return Context(Target("http://unused/v1", **target), runner, reference=ref, client=GymClient("http://unused/v1"))


def _call(prompt, generation):
    return ChatCall(url="http://unused/v1/chat/completions", request={}, status=200, response={},
                    bundle=Bundle(list(prompt), list(generation), [-0.5] * len(generation), "message"))


def test_a_failing_check_names_the_ids_another_vocabulary_gave_first(runner, chatml_ref):
    ctx = _ctx(runner, chatml_ref, tokenizer=chatml_ref.name).bind("E7")
    failure = ctx.fail("decoded generation '' does not contain the content 'Hi'", _call([1, 2], FOREIGN))
    assert failure.verdict.startswith(
        f"{CAUSE}generation_token_ids holds 3 of 3 ids outside 0..1023 (the first: [0] = {FOREIGN[0]}; --tokenizer "
        f"{chatml_ref.name} has 1000 ids, the model's vocab_size 1024): the endpoint serves another model's token "
        "ids, or --tokenizer is not the served model's; "), failure.verdict
    assert failure.verdict.endswith("; decoded generation '' does not contain the content 'Hi'")
    assert failure.evidence.verdict == failure.verdict
    # a token diff's sides count too (the continuity and template checks compare served prompts through one)
    diff = token_diff([1, 2, 3], [1, 2, -4], expected_label="P_1 + G_1", actual_label="P_2")
    assert ctx.fail("turn 2 differs", token_diff=diff).verdict.startswith(f"{CAUSE}P_2 holds 1 of 3 ids")


def test_ids_the_model_can_sample_are_not_blamed(runner, chatml_ref):
    """Ids past the tokenizer but inside the model's vocab_size are padding rows a model samples (E25)."""
    ctx = _ctx(runner, chatml_ref, tokenizer=chatml_ref.name).bind("M1")
    assert ctx.fail("x", _call([1, 1000, 1023], [2])).verdict == "x"
    assert ctx.fail("x", _call([1, 1024], [2])).verdict.startswith(f"{CAUSE}prompt_token_ids holds 1 of 2 ids")


def test_a_check_that_did_not_load_the_tokenizer_does_not_load_it_to_fail(runner, chatml_ref):
    ctx = _ctx(runner, tokenizer=chatml_ref.name)
    assert ctx.bind("E6").fail("usage differs", _call(FOREIGN, FOREIGN)).verdict == "usage differs"
    assert ctx._reference is None


def _first_turn(runner, ref, generation, content):
    ctx = _ctx(runner, ref, tokenizer=ref.name)
    call = _call(ref.render([{"role": "user", "content": "Hi."}]), generation)
    call.message, call.finish_reason = {"role": "assistant", "content": content}, "stop"
    ctx._cache["first_turn"] = ("ok", call)  # the memoised probe E7 reads
    return ctx.bind("E7")


def test_e7_reads_a_sampled_padding_row_as_the_server_does_and_names_foreign_ids(runner, chatml_ref):
    from conformance.checks.endpoint import decode_consistency
    from conformance.core import CheckFailure

    hello = chatml_ref.encode("Hello")
    # a random model samples padding rows (1000-1023 here): no text on the server's side, none on ours
    runner.run(decode_consistency(_first_turn(runner, chatml_ref, [*hello, 1003, *hello, chatml_ref.eos],
                                              "HelloHello")))
    try:
        runner.run(decode_consistency(_first_turn(runner, chatml_ref, FOREIGN, "Hi")))
    except CheckFailure as failure:
        assert failure.verdict.startswith(f"{CAUSE}generation_token_ids holds 3 of 3"), failure.verdict
        assert "decoded generation '⟨unknown id 114184⟩⟨unknown id" in failure.verdict
    else:
        raise AssertionError("E7 passed on another vocabulary's ids")
