"""M28: the endpoint accepts its own generation when the client sends it back, whatever it contains.

A false refusal loses the rollout just as drift corrupts it. NeMo Gym takes every ``<think>`` block out of a
generated text wherever it sits and sends the first as reasoning (docs/gym-versions.md); a client without a
reasoning parser sends the text verbatim. Both are the model's own output with its ids attached: an
endpoint that calls either an edit (P20's refusal applied too eagerly) breaks training on exactly the
generations a drift search never produces (found driving the reference with the real Gym, issue 14).

The same holds for a turn the model closed with a secondary stop id (Qwen3's generation config also stops
on ``<|endoftext|>``): an endpoint that counts turns by its EOS alone finds every later carried prefix one
turn short and refuses the call after next, about one call in a thousand under the real Gym.
"""
from __future__ import annotations

from functools import partial

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


def _specials(ref: Reference) -> frozenset[int]:
    """The tokenizer's named special tokens and every added token marked special (``<|im_start|>``...)."""
    added = {i for i, t in ref.tok.added_tokens_decoder.items() if t.special}
    return ref.special_ids | frozenset(added)


def generations(ref: Reference) -> dict[str, list[int]]:
    """Generations a sampler can produce and a drift search does not: (name -> ids before the EOS)."""
    enc = ref.encode
    out = {"think block mid-text": enc("abc<think> Alexandria</think> def"),
           "two think blocks, stray close tag": enc("X<think> bothering</think> Y</think> Z<think>b</think>!")}
    # never the EOS or a stop id: a sampler cannot produce the token it stops on mid-text
    specials = sorted(_specials(ref) - {ref.eos, secondary_stop(ref)})
    if specials:
        special = next((i for i in specials if "start" in ref.piece(i)), specials[0])
        out[f"special token {ref.piece(special)} mid-text"] = enc("abc") + [special] + enc(" def")
    pieces = _byte_pieces(ref)
    if pieces:
        out["bytes not valid UTF-8 alone"] = enc("caf") + pieces + enc(" au lait")
    return out


def secondary_stop(ref: Reference) -> int | None:
    """A special token other than EOS that a sampler may end a turn with: generation_config.json's extra EOS
    ids where the reference directory has one, else a special token named like an end (``<|endoftext|>``)."""
    from pathlib import Path  # noqa: PLC0415 - only this case reads the reference directory

    config = Path(ref.name) / "generation_config.json"
    if config.is_file():
        import json  # noqa: PLC0415

        eos = json.loads(config.read_text()).get("eos_token_id")
        extra = sorted(({eos} if isinstance(eos, int) else set(eos or [])) - {ref.eos})
        if extra:
            return extra[0]
    ends = sorted(i for i in _specials(ref) - {ref.eos} if "end" in ref.piece(i).lower())
    return ends[0] if ends else None


async def _two_turns_after_stop(ctx: Context, stop: int) -> list[Step]:
    """U → (a turn closed by ``stop``, supplied) → U → (a turn closed by EOS, supplied) → U → one token."""
    ref = ctx.reference
    r = ctx.rollout(max_tokens=4)
    steps = []
    for user, text, end in (("Say hello.", "hello", stop), ("Again.", "sure", ref.eos)):
        r.user(user)
        steps.append(await r.replay({"role": "assistant", "content": text}, ref.encode(text) + [end]))
    r.user("Thanks.")
    call = await ctx.client.chat(to_messages(r.items, gym=ctx.client.gym, reasoning_parser=False), max_tokens=1)
    if call.bundle is None:
        raise call.metadata_error or EndpointError("no token metadata in the response")
    return [*steps, Step(call, call.bundle)]


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
    # (label, ids shown as evidence, the exchange) -- started one at a time, the first refusal ends the check
    cases = [(f"own generation ({name}) sent back {form}", ids + [ref.eos], partial(_send_back, ctx, ids, form))
             for name, ids in generations(ref).items() for form in FORMS]
    stop = secondary_stop(ref)
    if stop is not None:
        ids = ref.encode("hello") + [stop]
        cases.append((f"two turns after one closed by {ref.piece(stop)}", ids, partial(_two_turns_after_stop, ctx, stop)))
    for label, ids, run in cases:
        try:
            steps = await run()
        except EndpointError as exc:
            if not exc.refused:
                raise
            verdict = f"false refusal: {label}: HTTP {exc.status} {str(exc)[:160]}"
            raise ctx.fail(verdict, request=exc.request, response=exc.response,
                           notes=[f"generation ids {ids}", f"decoded {ref.decode(ids)!r}"]) from None
        ctx.assert_continuity(steps, label=label)

