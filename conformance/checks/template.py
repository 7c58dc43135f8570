"""Template-level checks: properties of the tokenizer's chat template itself, no server needed (``--tokenizer``).

A template that is prefix-preserving needs no correction; one that is not tells the framework exactly
which trajectory shapes its server-side splice must absorb (docs/drift-cases.md §1 classes 2 and 3).
"""
from __future__ import annotations

from typing import Any

from ..client import parse_generation
from ..core import CheckInfo, Evidence
from ._context import CheckContext, Context
from ._reference import Reference
from ._registry import check

_U = {"role": "user", "content": "Hello there."}
_U2 = {"role": "user", "content": "Thanks, and then?"}
_CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"unit": "C", "city": "Rome"}}\n</tool_call>'


def _assistant(text: str) -> dict[str, Any]:
    return parse_generation(text)


# name -> (messages before the assistant turn, model output text, messages after it)
SHAPES: dict[str, tuple[list[dict], str, list[dict]]] = {
    "plain-then-user": ([_U], "Hi! How can I help?", [_U2]),
    "reasoning-then-user": ([_U], "<think>\nThe user greets me.\n</think>\n\nHi!", [_U2]),
    "empty-then-user": ([_U], "", [_U2]),
    "tool-then-result": ([_U], _CALL, [{"role": "tool", "tool_call_id": "call_0", "content": "21 C"}]),
    "reasoning-tool-then-result": ([_U], "<think>\nCheck Rome.\n</think>\n\n" + _CALL,
                                   [{"role": "tool", "tool_call_id": "call_0", "content": "21 C"}]),
    "parallel-tools-then-results": ([_U], _CALL + "\n" + _CALL.replace("Rome", "Oslo"),
                                    [{"role": "tool", "tool_call_id": "call_0", "content": "21 C"},
                                     {"role": "tool", "tool_call_id": "call_1", "content": "-3 C"}]),
}


def prefix_breaks(ref: Reference) -> dict[str, str]:
    """Shapes where ``render(before, gen) + model output + EOS`` is not a prefix of the next render."""
    eos = ref.tok.eos_token or ""
    breaks = {}
    for name, (before, output, after) in SHAPES.items():
        seen = ref.render_text(before, add_generation_prompt=True) + output + eos
        later = ref.render_text(before + [_assistant(output)] + after, add_generation_prompt=True)
        if not later.startswith(seen):
            at = next((i for i, (a, b) in enumerate(zip(seen, later)) if a != b), min(len(seen), len(later)))
            breaks[name] = f"at char {at}: model saw {seen[at:at + 40]!r}, later render has {later[at:at + 40]!r}"
    return breaks


@check("T1")
async def prefix_preserving(ctx: CheckContext) -> None:
    breaks = prefix_breaks(ctx.reference)
    if breaks:
        verdict = f"template is not prefix-preserving for {len(breaks)} of {len(SHAPES)} shapes " \
                  f"({', '.join(breaks)}): the server's splice must absorb these"
        raise CheckInfo(ctx.check_id, verdict, Evidence(verdict=verdict, notes=[f"{k}: {v}" for k, v in breaks.items()]))


@check("M17")
async def eos_is_end_of_turn(ctx: CheckContext) -> None:
    ref = ctx.reference
    eos = ref.tok.eos_token
    prompt = ref.render_text([_U], add_generation_prompt=True)
    full = ref.render_text([_U, {"role": "assistant", "content": "Hi!"}], add_generation_prompt=False)
    span = full[len(prompt):] if full.startswith(prompt) else full
    if not eos or ("Hi!" + eos) not in span:
        verdict = f"eos_token {eos!r} (id {ref.eos}) does not close the assistant turn: the template renders " \
                  f"{span[:40]!r} after the generation prompt"
        raise ctx.fail(verdict, notes=[f"tokenizer: {ref.name}"])


@check("T2")
async def separator_consistent(ctx: CheckContext) -> None:
    """The token after an assistant's EOS must be the one after a user's EOS (D04: dropped ``\\n``)."""
    ref = ctx.reference
    if ref.eos is None:
        return
    ids = ref.render([_U, {"role": "assistant", "content": "Hi!"}, _U2], add_generation_prompt=True)
    ends = [i for i, t in enumerate(ids) if t == ref.eos]
    text = ref.render_text([_U], add_generation_prompt=True)
    n_prompt = len(ref.encode(text))
    user_end = max(i for i in ends if i < n_prompt)
    assistant_end = min((i for i in ends if i >= n_prompt), default=None)
    if assistant_end is None:
        return  # M17 reports a template whose EOS does not close the assistant turn
    after_user, after_assistant = ids[user_end + 1:user_end + 2], ids[assistant_end + 1:assistant_end + 2]
    if after_user != after_assistant:
        verdict = f"after a user turn's EOS the template has {after_user} " \
                  f"({ref.decode(after_user)!r}) but after an assistant's EOS {after_assistant} " \
                  f"({ref.decode(after_assistant)!r}): inconsistent turn separator"
        raise ctx.fail(verdict)


@check("T3")
async def tool_call_roundtrip(ctx: CheckContext) -> None:
    """A hermes-format call, parsed the way the server parses it, must re-render with the same bytes."""
    ref = ctx.reference
    rendered = ref.render_text([_U, _assistant(_CALL)], add_generation_prompt=False)
    if _CALL not in rendered:
        verdict = f"tool call re-rendered with different bytes: model wrote {_CALL!r}, template renders " \
                  f"{rendered[len(ref.render_text([_U], add_generation_prompt=True)):][:120]!r}"
        raise ctx.fail(verdict)


@check("M18")
async def tool_args_string(ctx: CheckContext) -> None:
    """Arguments as the OpenAI JSON string must render like the same arguments given as an object."""
    ref = ctx.reference
    as_string = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_0", "type": "function", "function": {"name": "f", "arguments": '{"city": "Rome"}'}}]}
    as_object = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_0", "type": "function", "function": {"name": "f", "arguments": {"city": "Rome"}}}]}
    try:
        s = ref.render_text([_U, as_string], add_generation_prompt=False)
    except Exception as exc:  # noqa: BLE001 - a template error on string arguments is exactly D21
        raise ctx.fail(f"template fails on JSON-string arguments: {type(exc).__name__}: {exc}") from None
    o = ref.render_text([_U, as_object], add_generation_prompt=False)
    if s != o:
        at = next((i for i, (a, b) in enumerate(zip(s, o)) if a != b), min(len(s), len(o)))
        raise ctx.fail(f"JSON-string arguments render as {s[at:at + 40]!r}, the object as "
                       f"{o[at:at + 40]!r} (per-character or double-encoded)")
