"""Multi-turn checks (M): continuity of served prompts across the calls of a rollout (contract §7, probes P01-P19).

Where a probe needs a specific previous generation the harness supplies it with chosen ids (``replay``);
the endpoint must trust message-level ids, so the chosen ids must reappear verbatim in the next prompt.
"""
from __future__ import annotations

from typing import Any

from ..client import Rollout, Step, parse_generation, tokenize_body
from ..core import CheckSkipped, EndpointError, splice, token_diff
from ._context import CheckContext, Context
from ._registry import check
from ._tools import TOOLS, tool_call_text



def _eos(ctx: Context) -> int:
    eos = ctx.reference.eos
    if eos is None:
        raise CheckSkipped("the reference tokenizer defines no eos_token_id")
    return eos


async def _replay_text(ctx: Context, r: Rollout, text: str, *, eos: bool = True) -> Step:
    """Supply ``text`` as the model's generation, canonically encoded (plus EOS unless truncated)."""
    ids = ctx.reference.encode(text)
    # the message is what a parser makes of the decoded ids (tokenizers may normalise the input text)
    return await r.replay(parse_generation(ctx.reference.decode(ids)), ids + ([_eos(ctx)] if eos else []))


async def _turn_then_user(ctx: CheckContext, ask: str, text: str, follow_up: str, *, label: str) -> None:
    """U -> (``text``, supplied) -> U -> one sampled token; the supplied turn must survive into the next prompt."""
    r = ctx.rollout(max_tokens=4)
    r.user(ask)
    await _replay_text(ctx, r, text)
    r.user(follow_up)
    await r.generate(max_tokens=1)
    ctx.assert_continuity(r.steps, label=label)


@check("M1", "sampled-rollout")
async def continuity_sampled(ctx: CheckContext) -> None:
    """Three sampled calls (U gen U gen U gen): the endpoint's own generations carried back unchanged."""
    r = ctx.rollout(max_tokens=24)
    r.user("Name a colour.")
    await r.generate()
    r.user("And another one?")
    await r.generate()
    r.user("One more, then stop.")
    await r.generate()
    ctx.assert_continuity(r.steps, label="sampled rollout")


@check("M1", "truncated-and-tool")
async def continuity_constructed(ctx: CheckContext) -> None:
    """A truncated turn, then a tool turn: continuity must hold with and without the model's EOS."""
    r = ctx.rollout(tools=TOOLS, max_tokens=8)
    r.user("What is the weather in Paris?")
    await _replay_text(ctx, r, "Let me check the weath", eos=False)
    r.user("Go on.")
    await _replay_text(ctx, r, tool_call_text('{"city": "Paris"}'))
    r.tool_output("call_0", "18 degrees, sunny")
    await r.generate()
    ctx.assert_continuity(r.steps, label="truncated + tool rollout")


@check("M1", "truncated-mid-reasoning")
async def continuity_truncated_reasoning(ctx: CheckContext) -> None:
    """A turn cut by max_tokens inside its reasoning, then a short user turn (reasoning models hit max_tokens
    while thinking). Where the template strips earlier reasoning, its render of the history is now shorter
    than the prompt served before; the sampled ids must still open the next prompt (NeMo RL's second splice
    refused this rollout as non-monotonic, contract §7.5)."""
    r = ctx.rollout(max_tokens=8)
    r.user("Is 91 a prime?")
    thought = ("<think>\nCheck the divisors of 91 one at a time: 2 does not divide it, 3 does not, 5 does not, "
               "7 does, since 7 times 13 is 91, so")
    await _replay_text(ctx, r, thought, eos=False)
    r.user("Well?")
    await r.generate(max_tokens=1)
    ctx.assert_continuity(r.steps, label="turn truncated inside its reasoning")


def _splice_expectation(ctx: Context, before: Step, after: Step) -> list[int]:
    req = after.call.request
    messages, kwargs = req["messages"], dict(req.get("chat_template_kwargs") or {})
    last_assistant = max(i for i, m in enumerate(messages) if m.get("role") == "assistant")
    ref = ctx.reference
    tp = ref.render(messages[:last_assistant + 1], tools=req.get("tools"), add_generation_prompt=False, **kwargs)
    t = ref.render(messages, tools=req.get("tools"), add_generation_prompt=True, **kwargs)
    gen = before.bundle.generation_token_ids
    ends = {ref.eos}
    if before.call.finish_reason == "stop" and gen and gen[-1] != ref.eos and gen[-1] in ref.special_ids:
        # the model stopped on another of its stop ids (Qwen3 also stops on <|endoftext|>): §7.7 keeps that id
        # in place of the template's end-of-turn token, as the later NeMo RL revision's EOS set does
        ends.add(gen[-1])
    return splice(before.bundle.prompt_token_ids + gen, tp, t, ends)


def _assert_spliced(ctx: CheckContext, steps: list[Step], label: str, tier: str = "") -> None:
    for k in range(len(steps) - 1):
        want = _splice_expectation(ctx, steps[k], steps[k + 1])
        got = steps[k + 1].bundle.prompt_token_ids
        if want != got:
            diff = token_diff(want, got, decode=ctx.reference.decode, expected_label="splice(M, TP, T, eos)",
                              actual_label=f"P_{k + 2}")
            verdict = f"{label}: turn {k + 2} prompt differs from the §7.4 splice at position {diff.first_diff}"
            raise ctx.fail(verdict, steps[k + 1].call, token_diff=diff, tier=tier)


@check("M2")
async def splice_exact(ctx: CheckContext) -> None:
    r = ctx.rollout(tools=TOOLS, max_tokens=8)
    r.user("Weather in Oslo?")
    await _replay_text(ctx, r, tool_call_text('{"city": "Oslo"}'))
    r.tool_output("call_0", "-3 degrees")
    await _replay_text(ctx, r, "It is cold: -3 degrees.")
    r.user("Thanks!")
    await r.generate()
    _assert_spliced(ctx, r.steps, "tool rollout")


@check("M3")
async def bpe_canary(ctx: CheckContext) -> None:
    """P01/P02: a non-canonical split of a word, fed back as the previous generation."""
    merge, different = ctx.reference.splits
    cases = [(n, s) for n, s in (("merge", merge), ("different-split", different)) if s is not None]
    if not cases:
        raise CheckSkipped("no non-canonical split found in the tokenizer vocabulary")
    for name, split in cases:
        r = ctx.rollout(max_tokens=4)
        r.user(f"Say exactly:{split.text}")
        await r.replay(parse_generation(split.text), list(split.sampled) + [_eos(ctx)])
        r.user("Thanks.")
        await r.generate(max_tokens=1)
        steps = r.steps
        ctx.assert_continuity(steps, label=f"bpe {name} canary {split.text!r} sampled as {list(split.sampled)}")
        body = tokenize_body(steps[-1].call.request)
        status, data = await ctx.client.tokenize(body)
        if status == 200 and isinstance(data, dict):
            expected = steps[0].bundle.prompt_token_ids + steps[0].bundle.generation_token_ids
            tokens = data.get("tokens") or []
            if tokens[:len(expected)] != expected:
                diff = token_diff(expected, tokens, decode=ctx.reference.decode, prefix=True,
                                  expected_label="P_1 + G_1", actual_label="/tokenize tokens")
                raise ctx.fail(f"/tokenize re-tokenized the {name} canary at position {diff.first_diff}",
                               request=body, response=data, token_diff=diff)


@check("M4")
async def tool_call_bytes(ctx: CheckContext) -> None:
    """P08: non-template spacing and key order in the model's tool call must survive verbatim."""
    text = '<tool_call>\n{"arguments":{"unit": "C","city":  "Rome"}, "name":"get_weather"}\n</tool_call>'

    r = ctx.rollout(tools=TOOLS, max_tokens=4)
    r.user("Weather in Rome, in Celsius?")
    await _replay_text(ctx, r, text)
    r.tool_output("call_0", "21 C")
    await r.generate(max_tokens=1)
    ctx.assert_continuity(r.steps, label="tool call with model-specific JSON bytes")


@check("M5", "across-user")
async def reasoning_across_user(ctx: CheckContext) -> None:
    """P05: reasoning of an earlier turn stays in the served prompt after a new user turn."""
    await _turn_then_user(ctx, "What is 2+2?", "<think>\nTwo plus two makes four.\n</think>\n\nIt is 4.", "And 3+3?",
                          label="reasoning across a user turn")


@check("M5", "across-tools")
async def reasoning_across_tools(ctx: CheckContext) -> None:
    """P07: U → A(think + tool call) → T → A(think + tool call) → T → gen."""
    r = ctx.rollout(tools=TOOLS, max_tokens=4)
    r.user("Compare the weather in Rome and Oslo.")
    await _replay_text(ctx, r, "<think>\nFirst Rome.\n</think>\n\n" + tool_call_text('{"city": "Rome"}'))
    r.tool_output("call_0", "21 C")
    await _replay_text(ctx, r, "<think>\nNow Oslo.\n</think>\n\n" + tool_call_text('{"city": "Oslo"}'))
    r.tool_output("call_0", "-3 C")
    await r.generate(max_tokens=1)
    ctx.assert_continuity(r.steps, label="reasoning across tool turns")


@check("M11")
async def truncated_turn(ctx: CheckContext) -> None:
    """P04: after a turn cut by max_tokens, exactly one end-of-turn token follows the sampled ids."""
    r = ctx.rollout(max_tokens=4)
    r.user("Tell me a long story.")
    await _replay_text(ctx, r, "Once upon a time there was a ti", eos=False)
    r.user("Continue.")
    await r.generate(max_tokens=1)
    steps = r.steps
    ctx.assert_continuity(steps, label="truncated turn")
    m = steps[0].bundle.prompt_token_ids + steps[0].bundle.generation_token_ids
    served, eos = steps[1].bundle.prompt_token_ids, _eos(ctx)
    after = served[len(m):len(m) + 2]
    if not after or after[0] != eos or (len(after) > 1 and after[1] == eos):
        diff = token_diff(m + [eos], served, decode=ctx.reference.decode, prefix=True,
                          expected_label="P_1 + G_1 + EOS", actual_label="P_2")
        raise ctx.fail(f"after the truncated turn the prompt continues with {after}, expected exactly one "
                       f"EOS {eos}", steps[1].call, token_diff=diff)


@check("M12")
async def turn_separator(ctx: CheckContext) -> None:
    """P03: the tokens after the model's EOS are the template's separator, exactly once."""
    r = ctx.rollout(tools=TOOLS, max_tokens=4)
    r.user("Weather in Lima?")
    await _replay_text(ctx, r, tool_call_text('{"city": "Lima"}'))
    r.tool_output("call_0", "25 C")
    await r.generate(max_tokens=1)
    steps = r.steps
    ctx.assert_continuity(steps, label="tool turn boundary")
    want = _splice_expectation(ctx, steps[0], steps[1])
    n = len(steps[0].bundle.prompt_token_ids) + len(steps[0].bundle.generation_token_ids)
    got = steps[1].bundle.prompt_token_ids
    if got[n:n + 3] != want[n:n + 3]:
        diff = token_diff(want, got, decode=ctx.reference.decode, expected_label="reference boundary",
                          actual_label="P_2")
        raise ctx.fail(f"after the model's end token the prompt has {got[n:n + 3]}, the template has "
                       f"{want[n:n + 3]} (separator missing or doubled)", steps[1].call, token_diff=diff)


@check("M13")
async def tokenize_multiturn(ctx: CheckContext) -> None:
    """P17 with carried ids: a non-canonical previous generation (when a tokenizer is given) makes a
    /tokenize that skips the splice visible."""
    split = ctx.reference.splits[0] if ctx.has_reference else None

    r = ctx.rollout(max_tokens=8)
    r.user("Name a fruit.")
    if split is not None:  # a constructed turn that ends on EOS: the verdict must not depend on sampling
        await _replay_text(ctx, r, "A pear.")
    else:
        await r.generate()
    r.user("Another?")
    if split is not None:
        await r.replay(parse_generation(split.text), list(split.sampled) + [_eos(ctx)])
        r.user("Thanks.")
    await r.generate(max_tokens=1)
    steps = r.steps
    body = tokenize_body(steps[-1].call.request)
    status, data = await ctx.client.tokenize(body)
    if status in (404, 405, 501):
        raise CheckSkipped(f"/tokenize not served (HTTP {status})")
    tokens = data.get("tokens") if isinstance(data, dict) else None
    if tokens != steps[-1].bundle.prompt_token_ids:
        diff = token_diff(steps[-1].bundle.prompt_token_ids, tokens or [], expected_label="chat prompt_token_ids",
                          actual_label="/tokenize tokens", decode=ctx.decode if ctx.has_reference else None)
        raise ctx.fail(f"multi-turn /tokenize with carried ids differs from chat at position "
                       f"{diff.first_diff}", request=body, response=data, token_diff=diff)


@check("M14")
async def assistant_without_ids(ctx: CheckContext) -> None:
    """P18: U → A1(ids, tool call) → T → A2(no ids) → U → gen: refuse, or serve every message."""
    try:
        r = ctx.rollout(tools=TOOLS, max_tokens=4)
        r.user("Weather in Cairo?")
        await _replay_text(ctx, r, tool_call_text('{"city": "Cairo"}'))
        r.tool_output("call_0", "thirty-five degrees")
        r.items.append({"type": "message", "role": "assistant",
                        "content": [{"type": "output_text", "text": "Sorry, the harness summarised this."}]})
        r.user("Say it in Fahrenheit.")
        call = await ctx.client.chat(r.messages(), tools=TOOLS, max_tokens=1)
    except EndpointError as exc:
        if exc.refused:
            return  # refused loudly: allowed
        raise
    if call.bundle is None:
        raise ctx.fail(f"no token bundle: {call.metadata_error}", call)
    served = ctx.reference.decode(call.bundle.prompt_token_ids)
    missing = [t for t in ("thirty-five degrees", "Sorry, the harness summarised this.", "Say it in Fahrenheit.")
               if t not in served]
    if missing:
        raise ctx.fail(f"served prompt silently dropped messages: {missing}", call,
                       notes=[f"served prompt: {served[-400:]!r}"])


@check("M15")
async def empty_prefix_ids(ctx: CheckContext) -> None:
    """P19: empty carried lists / required_prefix_token_ids=[] → error, or the plain template render."""
    for variant in ("empty-lists", "required_prefix"):
        r = ctx.rollout(max_tokens=4)
        r.user("Hi.")
        r.items.append({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello!"}],
                        "prompt_token_ids": [], "generation_token_ids": [], "generation_log_probs": []})
        r.user("How are you?")
        extra: dict[str, Any] = {"required_prefix_token_ids": []} if variant == "required_prefix" else {}
        try:
            call = await ctx.client.chat(r.messages(), max_tokens=1, **extra)
        except EndpointError as exc:
            if exc.refused:
                continue  # a loud error is one of the two allowed answers
            raise
        if call.bundle is None:
            raise ctx.fail(f"{variant}: HTTP {call.status} without a token bundle: {call.metadata_error}", call)
        if ctx.has_reference:
            req = call.request
            want = ctx.reference.render(req["messages"], **(req.get("chat_template_kwargs") or {}))
            if call.bundle.prompt_token_ids != want:
                diff = token_diff(want, call.bundle.prompt_token_ids, decode=ctx.reference.decode,
                                  expected_label="template render (fallback)", actual_label="prompt_token_ids")
                raise ctx.fail(f"{variant}: served prompt is neither an error nor the template fallback "
                               f"(differs at {diff.first_diff})", call, token_diff=diff)
    await _empty_after_carried(ctx)


async def _empty_after_carried(ctx: CheckContext) -> None:
    """P19 with history: empty lists after a turn that carries real (non-canonical) ids.

    Treating ``[]`` as the prefix source silently drops the earlier carried ids, and the served prompt
    re-tokenizes them (D14). An error is fine; a 200 must still start with the earlier P_1 + G_1.
    """
    merge, _ = ctx.reference.splits if ctx.has_reference else (None, None)
    if merge is None:
        return

    try:
        r = ctx.rollout(max_tokens=4)
        r.user(f"Say exactly:{merge.text}")
        first = await r.replay(parse_generation(merge.text), list(merge.sampled) + [_eos(ctx)])
        r.user("Hi.")
        r.items.append({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello!"}],
                        "prompt_token_ids": [], "generation_token_ids": [], "generation_log_probs": []})
        r.user("How are you?")
        call = await ctx.client.chat(r.messages(), max_tokens=1)
    except EndpointError as exc:
        if exc.refused:
            return
        raise
    if call.bundle is None:
        raise ctx.fail(f"after-carried: HTTP {call.status} without a token bundle: {call.metadata_error}", call)
    expected = first.bundle.prompt_token_ids + first.bundle.generation_token_ids
    served = call.bundle.prompt_token_ids
    if served[:len(expected)] != expected:
        diff = token_diff(expected, served, decode=ctx.reference.decode, prefix=True,
                          expected_label="P_1 + G_1 (carried before the empty lists)", actual_label="prompt_token_ids")
        raise ctx.fail(f"after-carried: empty id lists displaced the earlier carried prefix; the served prompt "
                       f"is an un-spliced render presented as corrected (differs at {diff.first_diff})",
                       call, token_diff=diff)


@check("M19")
async def parallel_tool_results(ctx: CheckContext) -> None:
    """P10: two tool calls, two consecutive tool results → one tool turn; continuity kept."""
    text = tool_call_text('{"city": "Rome"}') + "\n" + tool_call_text('{"city": "Oslo"}')

    r = ctx.rollout(tools=TOOLS, max_tokens=4)
    r.user("Weather in Rome and Oslo?")
    await _replay_text(ctx, r, text)
    r.tool_output("call_0", "21 C")
    r.tool_output("call_1", "-3 C")
    await r.generate(max_tokens=1)
    steps = r.steps
    ctx.assert_continuity(steps, label="parallel tool results")
    _assert_spliced(ctx, steps, "parallel tool results")


@check("M23")
async def empty_think_block(ctx: CheckContext) -> None:
    """P06: an answer without reasoning, then a user turn; with thinking off the generation prompt ends in an
    empty think block that Qwen3-style templates drop from history."""
    await _turn_then_user(ctx, "Say hello.", "Hello there.", "Again, please.",
                          label="answer without reasoning, then a user turn")


@check("M20")
async def reasoning_field_names(ctx: CheckContext) -> None:
    """P11: the same turn sent with reasoning as reasoning_content, as reasoning, or inline <think> is served
    identically (the carried ids decide)."""
    r = ctx.rollout(max_tokens=4)
    r.user("What is 3+4?")
    await _replay_text(ctx, r, "<think>\nThree plus four.\n</think>\n\nIt is 7.")
    r.user("Thanks.")
    base = r.messages()
    served = {}
    for variant in ("reasoning_content", "reasoning", "inline"):
        msgs = [dict(m) for m in base]
        a = msgs[1]
        text = a.pop("reasoning_content", None) or a.get("reasoning")
        a.pop("reasoning", None)
        if variant == "inline":
            a["content"] = f"<think>\n{text}\n</think>\n\n{a['content']}"
        else:
            a[variant] = text
        call = await ctx.client.chat(msgs, max_tokens=1, chat_template_kwargs=r.params.get("chat_template_kwargs"))
        if call.bundle is None:
            raise ctx.fail(f"{variant}: no token bundle: {call.metadata_error}", call)
        served[variant] = (call, call.bundle.prompt_token_ids)
    (_, want), *_ = served.values()
    for variant, (call, got) in list(served.items())[1:]:
        if got != want:
            diff = token_diff(want, got, decode=ctx.decode if ctx.has_reference else None,
                              expected_label="served with reasoning_content", actual_label=f"served with {variant}")
            raise ctx.fail(f"reasoning sent as {variant} is served differently from reasoning_content at "
                           f"position {diff.first_diff}", call, token_diff=diff)
