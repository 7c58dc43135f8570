"""History-shape checks: which carried message the prefix comes from (M6), and edited history (M16, P20).

Both use constructed turns (the harness supplies the generations), so the verdicts do not depend on what
the model samples.
"""
from __future__ import annotations

from ..client import Rollout, parse_generation
from ..core import CheckSkipped, EndpointError, prefix_difference, token_diff
from ._context import CheckContext, Context
from ._registry import check
from .multiturn import _eos, _replay_text

SUMMARY = "[The assistant's earlier answer, summarised by the harness.]"


@check("M6")
async def prefix_from_last_carrier(ctx: CheckContext) -> None:
    """U → A1 (ids) → U → A2 (ids, a non-canonical split) → U → gen: the prefix is P2 + G2, read from the
    message-level fields of the *last* message carrying ids -- no out-of-band field is sent."""
    split = ctx.reference.splits[0] or ctx.reference.splits[1]
    if split is None:
        raise CheckSkipped("the tokenizer's vocabulary has no word with a non-canonical split")

    r = ctx.rollout(max_tokens=4)
    r.user("Say hello.")
    await _replay_text(ctx, r, "Hello there.")
    r.user("Name a word.")
    await r.replay(parse_generation(split.text), [*split.sampled, _eos(ctx)])
    r.user("Thanks.")
    await r.generate(max_tokens=1)
    steps = r.steps
    first, last, final = (s.bundle for s in steps)
    want = last.prompt_token_ids + last.generation_token_ids
    pos = prefix_difference(want, final.prompt_token_ids)
    if pos is None:
        return
    older = first.prompt_token_ids + first.generation_token_ids
    whose = "an earlier message's ids (the first carrier), not the last message carrying prompt_token_ids" \
        if prefix_difference(older, final.prompt_token_ids) is None else "neither carried message's ids"
    diff = token_diff(want, final.prompt_token_ids, decode=ctx.reference.decode, prefix=True,
                      expected_label="P_2 + G_2 (last carrier)", actual_label="P_3")
    raise ctx.fail(f"turn 3 prompt is built from {whose}: it departs from P_2 + G_2 at position {pos}",
                   steps[-1].call, token_diff=diff)


@check("M16")
async def edited_history(ctx: CheckContext) -> None:
    """P20: the harness replaces a generated assistant turn by a summary but keeps its ids. Refusing is right;
    serving the summary without claiming continuity is right (the trainer's contiguity check flags it);
    splicing the original ids back in silently trains on a history the environment never sent."""
    try:
        r = ctx.rollout(max_tokens=4)
        r.user("Describe the sea in one sentence.")
        await _replay_text(ctx, r, "The sea is wide, deep and restless under a grey sky.")
        _summarise_last_assistant(r)
        r.user("And the sky?")
        await r.generate(max_tokens=1)
    except EndpointError as exc:
        if exc.refused:
            return  # refused loudly
        raise ctx.endpoint_failure(exc) from None
    call, before = r.steps[-1].call, r.steps[-2].bundle
    carried = before.prompt_token_ids + before.generation_token_ids
    served = call.bundle.prompt_token_ids
    if prefix_difference(carried, served) is None and SUMMARY not in ctx.reference.decode(served):
        raise ctx.fail("an assistant turn edited after generation (summarised) was served as its original "
                       "tokens: the prompt claims continuity with P_1 + G_1 and the environment's edit is "
                       "gone (non-monotonic history neither refused nor flagged, P20)", call,
                       notes=[f"served prompt: {ctx.reference.decode(served)[-300:]!r}"])


def _summarise_last_assistant(r: Rollout) -> None:
    """Rewrite the text of the last assistant message item, keeping its token fields (what a summariser does)."""
    for item in reversed(r.items):
        if item.get("type") == "message" and item.get("role") == "assistant":
            item["content"] = [{"type": "output_text", "text": SUMMARY}]
            return
    raise AssertionError("no assistant message item to summarise")
