"""The property-based drift search (M1): hypothesis conversations driven through the endpoint, continuity after
every call. A failure is shrunk by hypothesis to a minimal conversation and reported with that example."""
from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given, reject, seed as hyp_seed, settings
from hypothesis import strategies as st

from ..client import Rollout, Step, parse_generation
from ..core import CheckFailure, ContextOverflow, EndpointError
from ..strategies import LIVE_SERVER, WORDS, conversations
from ._context import CheckContext, Context
from ._reference import Reference
from ._registry import check
from ._tools import TOOLS


def resplit(ref: Reference, ids: list[int], picks: list[int]) -> list[int]:
    """Replace the tokens at ``picks`` by a two-piece split of the same bytes, where the vocabulary has one."""
    vocab = ref.vocab
    out: list[int] = []
    for i, tid in enumerate(ids):
        piece = ref.piece(tid) if i in picks else None
        if isinstance(piece, str) and tid not in ref.special_ids:
            for cut in range(1, len(piece)):
                a, b = vocab.get(piece[:cut]), vocab.get(piece[cut:])
                if a is not None and b is not None:
                    out.extend([a, b])
                    break
            else:
                out.append(tid)
        else:
            out.append(tid)
    return out


async def drive(ctx: Context, conversation: list[dict[str, Any]]) -> list[Step]:
    """Run one generated conversation: constructed assistant turns, a served final call."""
    ref = ctx.reference
    r: Rollout = ctx.rollout(tools=TOOLS, max_tokens=1)
    pending_calls: list[str] = []
    for turn in conversation:
        if turn["role"] == "user":
            r.user(turn["text"])
        elif turn["role"] == "tool":
            r.tool_output(pending_calls.pop(0) if pending_calls else "call_0", turn["text"])
        else:
            ids = resplit(ref, ref.encode(turn["text"]), turn["resplit"])
            # a sampled turn has at least one token: an empty text can only have been ended by EOS
            if (not turn["truncated"] or not ids) and ref.eos is not None:
                ids.append(ref.eos)
            # the server parses what the ids decode to (the tokenizer may normalise, e.g. NFC), not our input text
            message = parse_generation(ref.decode([t for t in ids if t != ref.eos]))
            pending_calls = [c["id"] for c in message.get("tool_calls", [])]
            await r.replay(message, ids)
    await r.generate(max_tokens=1)
    return r.steps


@check("M1", "drift-search")
async def drift_search(ctx: CheckContext) -> None:
    """Continuity over hypothesis-generated conversations (settings from the active hypothesis profile)."""
    ref = ctx.reference
    words = tuple(WORDS + [s.text.strip() for s in ref.splits if s is not None])
    strategy = conversations(words)
    stats: dict[str, Any] = ctx.session.__dict__.setdefault("drift_stats", {"examples": 0, "first_failure": None})

    @settings(**LIVE_SERVER)
    @given(st.data())
    def search(data: st.DataObject) -> None:
        conversation = data.draw(strategy, label="conversation")
        stats["examples"] += 1
        try:
            try:
                steps = ctx.run(drive(ctx, conversation))  # from the search's thread onto the session loop
            except ContextOverflow:
                reject()  # a conversation longer than the endpoint's context says nothing about continuity
            except EndpointError as exc:
                raise ctx.endpoint_failure(exc) from None
            ctx.assert_continuity(steps, label="drift search")
        except CheckFailure as failure:
            if stats["first_failure"] is None:
                stats["first_failure"] = stats["examples"]
            failure.evidence.hypothesis = {"seed": ctx.hypothesis_seed, "example": json.loads(json.dumps(conversation))}
            raise

    if ctx.hypothesis_seed is not None:
        search = hyp_seed(ctx.hypothesis_seed)(search)
    # hypothesis drives a synchronous test function: run it in a worker thread while this coroutine waits, so
    # each example's calls can run on the (now free) session loop
    try:
        await asyncio.to_thread(search)
    except CheckFailure as failure:  # the shrunk example's failure: say how the search got there
        first = stats["first_failure"] or stats["examples"]
        failure.evidence.metrics = {**(failure.evidence.metrics or {}), "examples_tried": stats["examples"],
                                    "first_failing_example": first, "shrink_steps": stats["examples"] - first}
        raise
