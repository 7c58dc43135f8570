"""M28: the endpoint accepts its own generation when the client sends it back, whatever it contains.

A false refusal loses the rollout just as drift corrupts it. NeMo Gym takes every ``<think>`` block out of a
generated text wherever it sits and sends the first as reasoning (docs/gym-versions.md); a client without a
reasoning parser sends the text verbatim. Both are the model's own output with its ids attached: an
endpoint that calls either an edit (P20's refusal applied too eagerly) breaks training on exactly the
generations a drift search never produces (found driving the reference with the real Gym, issue 14).
"""
from __future__ import annotations

from ..client import Step, to_messages, to_output_items
from ..core import CheckSkipped, EndpointError
from ._context import CheckContext, Context
from ._reference import Reference
from ._registry import check

FORMS = ("verbatim", "as Gym sends it")


def _byte_pieces(ref: Reference, char: str = "é") -> list[int] | None:
    """``char`` as one token per UTF-8 byte (each piece alone is not valid UTF-8), where the vocabulary has
    byte-level pieces (GPT-2-style byte BPE maps bytes 0xA1-0xFF to the same code point)."""
    ids = [ref.vocab.get(chr(b)) for b in char.encode()]
    if None in ids or ref.decode(ids) != char or "\ufffd" not in ref.decode(ids[:1]):
        return None
    return ids  # type: ignore[return-value]


def generations(ref: Reference) -> dict[str, list[int]]:
    """Generations a sampler can produce and a drift search does not: (name -> ids before the EOS)."""
    enc = ref.encode
    out = {"think block mid-text": enc("abc<think> Alexandria</think> def"),
           "two think blocks, stray close tag": enc("X<think> bothering</think> Y</think> Z<think>b</think>!")}
    specials = sorted(ref.special_ids - {ref.eos})
    if specials:
        special = next((i for i in specials if "start" in ref.piece(i)), specials[0])
        out[f"special token {ref.piece(special)} mid-text"] = enc("abc") + [special] + enc(" def")
    pieces = _byte_pieces(ref)
    if pieces:
        out["bytes not valid UTF-8 alone"] = enc("caf") + pieces + enc(" au lait")
    return out


async def _send_back(ctx: Context, ids: list[int], form: str) -> list[Step]:
    """U → (this generation, supplied) → U → one sampled token; the generation sent back in ``form``."""
    ref, eos = ctx.reference, ctx.reference.eos
    gen = ids + [eos]
    text = ref.decode(ids, skip_special_tokens=True)  # what an endpoint without a reasoning parser returns
    gym_form = form != "verbatim"
    r = ctx.rollout(max_tokens=4)
    r.user("Repeat after me.")
    step = await r.replay({"role": "assistant", "content": text}, gen)
    # re-express the supplied turn in the requested form (the rollout's items carry the bundle either way)
    r.items[1:] = to_output_items({"role": "assistant", "content": text}, step.bundle, gym=ctx.client.gym,
                                  reasoning_parser=gym_form)
    r.user("Thanks.")
    messages = to_messages(r.items, gym=ctx.client.gym, reasoning_parser=gym_form)
    call = await ctx.client.chat(messages, max_tokens=1)
    if call.bundle is None:
        raise call.metadata_error or EndpointError("no token metadata in the response")
    return [step, Step(call, call.bundle)]


@check("M28")
async def own_generation_accepted(ctx: CheckContext) -> None:
    ref = ctx.reference
    if ref.eos is None:
        raise CheckSkipped("the reference tokenizer defines no eos_token_id")
    for name, ids in generations(ref).items():
        for form in FORMS:
            try:
                steps = await _send_back(ctx, ids, form)
            except EndpointError as exc:
                if not exc.refused:
                    raise
                verdict = (f"false refusal: the endpoint refused its own generation ({name}) sent back {form}: "
                           f"HTTP {exc.status} {str(exc)[:160]}")
                raise ctx.fail(verdict, request=exc.request, response=exc.response,
                               notes=[f"generation ids {ids + [ref.eos]}", f"decoded {ref.decode(ids)!r}"]) from None
            ctx.assert_continuity(steps, label=f"own generation ({name}) sent back {form}")

