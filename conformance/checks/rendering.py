"""Served prompts against the reference render (needs --tokenizer): the first turn (E8) and system-only or
system-led conversations on templates that may demand a user turn (E24, P28)."""
from __future__ import annotations

from typing import Any

from ..core import CheckSkipped, EndpointError, token_diff
from ._context import CheckContext, Context
from ._registry import check


@check("E8")
async def first_turn_prompt(ctx: CheckContext) -> None:
    call = await ctx.first_turn()
    b = ctx.bundle(call)
    want = ctx.reference.render(call.request["messages"], **(call.request.get("chat_template_kwargs") or {}))
    if b.prompt_token_ids != want:
        diff = token_diff(want, b.prompt_token_ids, decode=ctx.reference.decode, expected_label="reference render",
                          actual_label="prompt_token_ids")
        raise ctx.fail(f"first-turn prompt differs from the reference render at position {diff.first_diff}",
                       call, token_diff=diff)


SYSTEM_LED: list[list[dict[str, Any]]] = [
    [{"role": "system", "content": "You are terse."}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi."}],
]


@check("E24")
async def system_only_prompts(ctx: CheckContext) -> None:
    """P28: ``[system]`` and ``[system, user]`` get a clear 4xx error or exactly the reference render."""
    kwargs = ctx.client.chat_template_kwargs or {}
    for messages in SYSTEM_LED:
        roles = [m["role"] for m in messages]
        try:
            want = ctx.reference.render(messages, **kwargs)
        except CheckSkipped:
            raise
        except Exception as exc:  # noqa: BLE001 - the template itself refuses (raise_exception): note why
            want, refused = None, f"{type(exc).__name__}: {exc}"
        try:
            call = await ctx.client.chat(messages, max_tokens=1)
        except EndpointError as exc:
            if exc.refused:
                continue  # a clear error is one of the two right answers
            if exc.status is None:
                raise ctx.endpoint_failure(exc) from None
            raise ctx.fail(f"{roles} answered HTTP {exc.status}, neither a clear 4xx error nor a render",
                           request=exc.request, response=exc.response) from None
        b = ctx.bundle(call)
        if want is None:
            raise ctx.fail(f"{roles}: the reference template refuses it ({refused[:160]}) but the endpoint "
                           f"served a prompt of its own instead of a clear error", call)
        if b.prompt_token_ids != want:
            diff = token_diff(want, b.prompt_token_ids, decode=ctx.reference.decode,
                              expected_label="reference render", actual_label="prompt_token_ids")
            raise ctx.fail(f"{roles} prompt differs from the reference render at position {diff.first_diff}",
                           call, token_diff=diff)
