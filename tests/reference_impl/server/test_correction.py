"""The prefix rule (§7.3), the splice on real templates and every drift variant, and the §7.9 refusals."""
from __future__ import annotations

import copy
import re

import pytest

from reference_impl.server.correction import _norm
from reference_impl.server.protocol import ApiError, ChatRequest
from reference_impl.server.rendering import template_message
from reference_impl.server.splice import splice

from .conftest import TEMPLATE_VARIANTS, TOOLS, carried, renderer_for, served_prompt

QWEN_EOS, QWEN_NL = 151645, 198


def _enc(renderer, text: str) -> list[int]:
    return list(renderer.tokenizer.encode(text, add_special_tokens=False))


def _continues(prev_prompt, gen, nxt) -> bool:
    return nxt[:len(prev_prompt) + len(gen)] == list(prev_prompt) + list(gen)


@pytest.mark.parametrize("variant", ["tiny-chatml"] + [f"tiny-chatml-drift-{v}" for v in TEMPLATE_VARIANTS])
@pytest.mark.parametrize("ended", [True, False], ids=["eos", "truncated"])
def test_tool_rollout_is_continuous_on_every_template(variant, ended):
    r = renderer_for(variant)
    msgs = [{"role": "user", "content": "What is the weather in Paris?"}]
    p1 = served_prompt(r, msgs, tools=TOOLS)
    req = ChatRequest.model_validate({"messages": msgs, "tools": TOOLS})
    assert p1 == r.render(req.messages, req.tools, None, add_generation_prompt=True)  # E8: first turn = template
    # The model's own bytes: reasoning, non-canonical JSON spacing and key order (P08).
    text = '<think>\nlook it up\n</think>\n\n<tool_call>\n{"arguments":{"city" :"Paris"},  "name":"get_weather"}\n</tool_call>'
    g1 = _enc(r, text) + ([r.eos_id] if ended else [])
    a1 = carried(p1, g1, r, content="", reasoning_content="look it up",
                 tool_calls=[{"id": "call_0", "type": "function",
                              "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}])
    msgs += [a1, {"role": "tool", "tool_call_id": "call_0", "content": "sunny"}]
    p2 = served_prompt(r, msgs, tools=TOOLS)
    assert _continues(p1, g1, p2)
    nxt = p2[len(p1) + len(g1)]
    # M11/M12: a truncated turn gets exactly one end-of-turn token; a finished one gets none extra.
    assert (nxt == r.eos_id) != ended
    g2 = _enc(r, "It is sunny.") + [r.eos_id]
    msgs += [carried(p2, g2, r), {"role": "user", "content": "Thanks"}]
    p3 = served_prompt(r, msgs, tools=TOOLS)
    assert _continues(p2, g2, p3)
    assert p3.count(r.eos_id) == p3[:len(p2) + len(g2)].count(r.eos_id) + 1  # the new user turn's EOS only


def test_qwen3_reasoning_survives_the_user_turn_the_template_strips_it_across(qwen3):
    # P05: the Qwen3 template drops <think> from assistant turns before the last user turn; the
    # served prompt keeps the model's own reasoning ids (EOS count, not position: §7.6 c).
    msgs = [{"role": "user", "content": "add 2 and 2"}]
    p1 = served_prompt(qwen3, msgs)
    g1 = _enc(qwen3, "<think>\nadd them\n</think>\n\n4") + [QWEN_EOS]
    msgs += [carried(p1, g1, qwen3, content="4", reasoning_content="add them"), {"role": "user", "content": "and 3?"}]
    p2 = served_prompt(qwen3, msgs)
    assert _continues(p1, g1, p2)
    assert p2[len(p1) + len(g1)] == QWEN_NL  # separator exactly once (M12)
    plain = qwen3.render(ChatRequest.model_validate({"messages": msgs}).messages, None, None,
                         add_generation_prompt=True)
    assert plain != p2  # the template alone would have stripped the reasoning
    assert p2[len(p1) + len(g1):] == plain[plain.index(QWEN_EOS, len(p1) - 1) + 1:]


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", "inline"])
def test_reasoning_field_spelling_does_not_change_the_prompt(qwen3, field):
    # P11 / M20.
    msgs = [{"role": "user", "content": "hi"}]
    p1 = served_prompt(qwen3, msgs)
    g1 = _enc(qwen3, "<think>\nR\n</think>\n\nC") + [QWEN_EOS]
    extra = {"content": "<think>\nR\n</think>\n\nC"} if field == "inline" else {"content": "C", field: "R"}
    msgs += [carried(p1, g1, qwen3, **extra), {"role": "user", "content": "more"}]
    expected = served_prompt(qwen3, msgs[:1] + [carried(p1, g1, qwen3, content="C", reasoning_content="R")] + msgs[2:])
    assert served_prompt(qwen3, msgs) == expected


def test_golden_skinny_prefix_via_tokenize_body(qwen3):
    # Contract §7.8: the explicit prefix carries the non-canonical split [26951, 3834].
    msgs = [{"role": "user", "content": " Skinny"}]
    assert served_prompt(qwen3, msgs) == [151644, 872, 198, 94224, 151645, 198, 151644, 77091, 198]
    assert served_prompt(qwen3, msgs, required=[151644, 872, 198, 26951, 3834]) == \
        [151644, 872, 198, 26951, 3834, 151645, 198, 151644, 77091, 198]


def test_golden_skinny_generation_survives_into_next_prompt(qwen3):
    # P01: the model sampled " Skinny" as [26951, 3834]; re-encoding would give [94224].
    msgs = [{"role": "user", "content": "Say exactly: Skinny"}]
    p1 = served_prompt(qwen3, msgs, kwargs={"enable_thinking": False})
    g1 = [26951, 3834, QWEN_EOS]
    msgs += [carried(p1, g1, qwen3), {"role": "user", "content": "again"}]
    p2 = served_prompt(qwen3, msgs, kwargs={"enable_thinking": False})
    assert _continues(p1, g1, p2)
    assert p2[len(p1):len(p1) + 2] == [26951, 3834]  # not the canonical [94224]


def _refusal(renderer, msgs, match, **kw):
    with pytest.raises(ApiError, match=match) as err:
        served_prompt(renderer, msgs, **kw)
    assert err.value.status == 400


def test_assistant_without_ids_after_one_with_ids_is_refused(chatml):
    # P18 / M14.
    p1 = served_prompt(chatml, [{"role": "user", "content": "hi"}])
    g1 = _enc(chatml, "hello") + [chatml.eos_id]
    msgs = [{"role": "user", "content": "hi"}, carried(p1, g1, chatml), {"role": "user", "content": "x"},
            {"role": "assistant", "content": "sorry, something went wrong"}, {"role": "user", "content": "y"}]
    _refusal(chatml, msgs, "without token ids after")


@pytest.mark.parametrize("bad", [
    {"prompt_token_ids": [], "generation_token_ids": [5], "generation_log_probs": [-1.0]},
    {"prompt_token_ids": [5], "generation_token_ids": [], "generation_log_probs": []},
    {"prompt_token_ids": [5], "generation_token_ids": [6]},
    {"generation_token_ids": [6], "generation_log_probs": [-1.0]},
    {"prompt_token_ids": [5], "generation_token_ids": [6, 7], "generation_log_probs": [-1.0]},
], ids=["empty-prompt", "empty-generation", "no-logprobs", "no-prompt", "length-mismatch"])
def test_partial_or_empty_bundles_are_rejected(chatml, bad):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        served_prompt(chatml, [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x", **bad},
                               {"role": "user", "content": "y"}])


def test_empty_required_prefix_is_rejected(chatml):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="required_prefix_token_ids"):
        served_prompt(chatml, [{"role": "user", "content": "hi"}], required=[])


def test_summarised_turn_is_refused_as_non_monotonic(chatml):
    # P20 / M16: the harness replaced the assistant text but kept the ids.
    p1 = served_prompt(chatml, [{"role": "user", "content": "hi"}])
    g1 = _enc(chatml, "The weather in Paris is sunny today.") + [chatml.eos_id]
    msgs = [{"role": "user", "content": "hi"}, carried(p1, g1, chatml, content="(summary: weather talk)"),
            {"role": "user", "content": "y"}]
    _refusal(chatml, msgs, "non-monotonic")


def test_removed_turns_are_refused_as_non_monotonic(chatml):
    msgs = [{"role": "user", "content": "a"}]
    p1 = served_prompt(chatml, msgs)
    g1 = _enc(chatml, "b") + [chatml.eos_id]
    msgs += [carried(p1, g1, chatml), {"role": "user", "content": "c"}]
    p2 = served_prompt(chatml, msgs)
    g2 = _enc(chatml, "d") + [chatml.eos_id]
    # The harness truncated history: the first exchange is gone but the second assistant keeps its ids.
    _refusal(chatml, [{"role": "user", "content": "c"}, carried(p2, g2, chatml), {"role": "user", "content": "e"}],
             "non-monotonic")


def test_template_that_drops_an_empty_assistant_is_refused():
    # D10: the drop-empty-assistant template omits an assistant with no content and no tool calls.
    r = renderer_for("tiny-chatml-drift-drop-empty-assistant")
    p1 = served_prompt(r, [{"role": "user", "content": "hi"}])
    g1 = _enc(r, "<think>\nhmm\n</think>\n\n") + [r.eos_id]
    msgs = [{"role": "user", "content": "hi"}, carried(p1, g1, r, content="", reasoning_content="hmm"),
            {"role": "user", "content": "y"}]
    _refusal(r, msgs, "non-monotonic")


def test_eos_that_is_not_end_of_turn_is_refused():
    # P21: tokenizer EOS <|endoftext|> never closes a turn in this template.
    r = renderer_for("tiny-chatml-drift-eos-not-end-of-turn")
    assert not r.eos_closes_turns
    _refusal(r, [{"role": "user", "content": "hi"}], "not the token that closes turns")


def test_out_of_vocabulary_carried_ids_are_refused(chatml):
    msgs = [{"role": "user", "content": "hi"}, carried([1, 2, 99999], [5, 2], chatml, content=chatml.decode([5])),
            {"role": "user", "content": "y"}]
    _refusal(chatml, msgs, "out of vocabulary", vocab_size=1024)


def test_served_prompt_equals_splice_of_reference_renders(chatml):
    # M2: exactly splice(M, TP, T) of §7.4 with the template's own renders.
    msgs = [{"role": "user", "content": "hi"}]
    p1 = served_prompt(chatml, msgs)
    g1 = _enc(chatml, "hello there") + [chatml.eos_id]
    msgs += [carried(p1, g1, chatml), {"role": "user", "content": "more"}]
    parsed = ChatRequest.model_validate({"messages": msgs}).messages
    tp = chatml.render(parsed[:2], None, None, add_generation_prompt=False)
    t = chatml.render(parsed, None, None, add_generation_prompt=True)
    assert served_prompt(chatml, msgs) == splice(p1 + g1, tp, t, chatml.eos_id)


@pytest.mark.parametrize("variant", ["tiny-qwen3", "tiny-chatml"] + [f"tiny-chatml-drift-{v}" for v in TEMPLATE_VARIANTS])
def test_the_two_renders_share_the_message_dicts_unchanged(variant):
    # build_prompt builds the template's message dicts once for T and TP: each render must be what fresh dicts
    # give, rendering must leave the dicts as they were, and the served ids are splice(M, TP, T) of those renders.
    r = renderer_for(variant)
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is the weather in Paris?"}]
    p1 = served_prompt(r, msgs, tools=TOOLS)
    g1 = _enc(r, '<think>\nlook it up\n</think>\n\n<tool_call>\n{"name": "get_weather", "arguments": {"city": '
                 '"Paris"}}\n</tool_call>') + [r.eos_id]
    msgs += [carried(p1, g1, r, content="", reasoning_content="look it up",
                     tool_calls=[{"id": "call_0", "type": "function",
                                  "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]),
             {"role": "tool", "tool_call_id": "call_0", "content": "sunny"}]
    p2 = served_prompt(r, msgs, tools=TOOLS)
    g2 = _enc(r, "<think>\neasy\n</think>\n\nIt is sunny.") + [r.eos_id]
    msgs += [carried(p2, g2, r, content="It is sunny.", reasoning_content="easy"), {"role": "user", "content": "Thanks"}]
    req = ChatRequest.model_validate({"messages": msgs, "tools": TOOLS})
    dicts = [template_message(m) for m in req.messages]
    before = copy.deepcopy(dicts)
    t = r.render(req.messages, req.tools, None, add_generation_prompt=True, dicts=dicts)
    tp = r.render(req.messages[:5], req.tools, None, add_generation_prompt=False, dicts=dicts[:5])
    assert dicts == before
    assert t == r.render(req.messages, req.tools, None, add_generation_prompt=True)
    assert tp == r.render(req.messages[:5], req.tools, None, add_generation_prompt=False)
    assert served_prompt(r, msgs, tools=TOOLS) == splice(p2 + g2, tp, t, r.eos_id)


def test_normalising_removes_exactly_what_regex_whitespace_matches():
    # _norm drops whitespace with str.split(); the edit check was written with re.sub(r"\s+", ""): the same on every
    # code point, one at a time and in runs, think tags removed first as before
    every = "".join(map(chr, range(0x110000)))
    text = f"a<think>\u00a0 b\n</think>{every}\r\n\u2028x<think"
    assert _norm(text) == re.sub(r"\s+", "", re.sub(r"</?think>", "", text))


# Issue 14: a generation whose <think> block is not at the start, sent back verbatim or the way NeMo Gym sends
# it (every block out of the content, the first as reasoning), is not an edit: the ids are the truth.
GYM_CASE = [148185, 50174, 35702, 11511, 21877, 138824, 8405, 34176, 17247, 55915, 101916, 107223, 151667, 90159,
            151668, 62551, 90528, 151668, 52055, 34604, 13330, 28036, 105374, 67547]
VERBATIM_CASE = [13683, 151667, 56133, 151668, 707, QWEN_EOS]


def _continues_after(renderer, gen, returned):
    msgs = [{"role": "user", "content": "hi"}]
    p1 = served_prompt(renderer, msgs)
    msgs += [carried(p1, gen, renderer, **returned), {"role": "user", "content": "next"}]
    assert _continues(p1, gen, served_prompt(renderer, msgs))


def test_mid_text_think_block_returned_verbatim_is_accepted(qwen3):
    assert qwen3.decode(VERBATIM_CASE[:-1]) == "abc<think> Alexandria</think> def"
    _continues_after(qwen3, VERBATIM_CASE, {"content": "abc<think> Alexandria</think> def"})
    _continues_after(qwen3, VERBATIM_CASE[:-1], {"content": "abc<think> Alexandria</think> def"})  # truncated


@pytest.mark.parametrize("gym_version", ["0.4.0", "0.7.0"])
@pytest.mark.parametrize("case", [GYM_CASE, VERBATIM_CASE], ids=["gym-case", "verbatim-case"])
def test_mid_text_think_block_as_gym_sends_it_is_accepted(qwen3, gym_version, case):
    from conformance.client import Bundle, gym_profile, to_messages, to_output_items

    gym = gym_profile(gym_version)
    text = qwen3.decode([t for t in case if t != QWEN_EOS])
    p1 = served_prompt(qwen3, [{"role": "user", "content": "hi"}])
    items = [{"role": "user", "content": "hi"},
             *to_output_items({"role": "assistant", "content": text}, Bundle(p1, case, [-1.0] * len(case), "message"),
                              gym=gym),
             {"role": "user", "content": "next"}]
    sent = to_messages(items, gym=gym)
    assert "<think>" not in sent[1]["content"] and sent[1]["reasoning"]  # what Gym does to it
    assert _continues(p1, case, served_prompt(qwen3, sent))


def test_an_edit_next_to_a_mid_text_think_block_is_still_refused(qwen3):
    p1 = served_prompt(qwen3, [{"role": "user", "content": "hi"}])
    msgs = [{"role": "user", "content": "hi"},
            carried(p1, VERBATIM_CASE, qwen3, content="abc (summarised) def", reasoning=" Alexandria"),
            {"role": "user", "content": "y"}]
    _refusal(qwen3, msgs, "non-monotonic")


def test_a_turn_closed_by_a_secondary_stop_id_keeps_later_turns_splicable(qwen3):
    # Issue 14, the rare HTTP 400 under real-Gym drive (about one call in a thousand): Qwen3's generation
    # config also stops on <|endoftext|> (151643). A turn the model closed with it is spliced with that id
    # kept (no second end token), so every later carried prefix holds one <|im_end|> fewer than the template
    # renders; the turn count must count the stop ids too, or the call after next is refused as
    # "close 5 turns but render 6".
    endoftext = 151643
    stops = frozenset({QWEN_EOS, endoftext})
    msgs = [{"role": "user", "content": "hi"}]
    p1 = served_prompt(qwen3, msgs, stop_ids=stops)
    g1 = _enc(qwen3, "hello") + [endoftext]
    msgs += [carried(p1, g1, qwen3, content="hello"), {"role": "user", "content": "again"}]
    p2 = served_prompt(qwen3, msgs, stop_ids=stops)
    assert _continues(p1, g1, p2) and p2[len(p1) + len(g1)] == QWEN_NL  # the stop id closes the turn
    g2 = _enc(qwen3, "sure") + [QWEN_EOS]
    msgs += [carried(p2, g2, qwen3, content="sure"), {"role": "user", "content": "bye"}]
    p3 = served_prompt(qwen3, msgs, stop_ids=stops)
    assert _continues(p2, g2, p3)
    g3 = _enc(qwen3, "ok") + [QWEN_EOS]
    msgs += [carried(p3, g3, qwen3, content="ok"), {"role": "user", "content": "one more"}]
    assert _continues(p3, g3, served_prompt(qwen3, msgs, stop_ids=stops))
