"""Endpoint checks (E): one call at a time, as Gym's model server makes it (contract §2-§5, §15)."""
from __future__ import annotations

import json
import re

from ..client import invalid_logprobs, parse_generation, tokenize_body
from ..core import SHOULD, CheckFailure, CheckSkipped, EndpointError, token_diff
from ._context import CheckContext, Context
from ._registry import check
from ._tools import TOOLS, tool_call_text

FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter"}
_THINK_TAG = re.compile(r"</?think>")


@check("E1")
async def models(ctx: CheckContext) -> None:
    status, data = await ctx.client.models()
    ok = status == 200 and isinstance(data, dict) and isinstance(data.get("data"), list) and data["data"] \
        and isinstance(data["data"][0], dict) and isinstance(data["data"][0].get("id"), str)
    if not ok:  # any answer satisfies Gym's readiness probe: the missing list is a SHOULD
        raise ctx.fail(f"GET /models answered HTTP {status} without data[0].id", tier=SHOULD,
                       response=data, curl=ctx.client.curl(ctx.client.api + "/models"))
    # A listed id MUST be usable as `model`: a run started without --model (and Gym's configs copied from
    # /models) sends exactly this id, e.g. the weights path where the server only knows --served-model-name.
    listed = data["data"][0]["id"]
    body = await ctx.client.body([{"role": "user", "content": "Hi."}], model=listed, max_tokens=1)
    status, answer = await ctx.client.post_json(ctx.client.api + "/chat/completions", body)
    if status != 200:
        raise ctx.fail(f"GET /models lists {listed!r}, but chat with model={listed!r} answered HTTP {status}: "
                       f"the listed id is not usable as model", request=body, response=answer,
                       curl=ctx.client.curl(ctx.client.api + "/chat/completions", body))


@check("E2")
async def training_body_accepted(ctx: CheckContext) -> None:
    """Full Gym body: tools, a carried bundle on an assistant with reasoning (both field names) and a tool call.

    The assistant turn must be one the model could have produced: with a tokenizer the harness supplies
    ``<think>…</think><tool_call>…`` as the generation; without one it carries a sampled turn.
    """
    from ..client import parse_generation


    try:
        r = ctx.rollout(tools=TOOLS, max_tokens=8)
        r.system("You are terse.").user("Weather in Oslo?")
        if ctx.has_reference:
            text = '<think>\nUse the tool.\n</think>\n\n' + tool_call_text('{"city": "Oslo"}')
            ids = ctx.reference.encode(text) + ([ctx.reference.eos] if ctx.reference.eos is not None else [])
            await r.replay(parse_generation(text), ids)
            r.tool_output("call_0", "-3 degrees")
        else:
            await r.generate()
            r.user("Thanks.")
        call = await ctx.client.chat(r.messages(), tools=TOOLS, max_tokens=8,
                                     chat_template_kwargs=r.params.get("chat_template_kwargs"))
    except EndpointError as exc:
        raise ctx.fail(f"training body rejected: {exc}", request=exc.request, response=exc.response) from None
    if call.incomplete or not isinstance(call.response, dict) or not call.response.get("choices"):
        raise ctx.fail(f"training body not served: HTTP {call.status}", call)


@check("E3")
async def bundle_complete(ctx: CheckContext) -> None:
    ctx.bundle(await ctx.first_turn())


@check("E4")
async def bundle_lengths(ctx: CheckContext) -> None:
    call = await ctx.first_turn()
    b = ctx.bundle(call)
    if len(b.generation_token_ids) != len(b.generation_log_probs):
        raise ctx.fail(f"{len(b.generation_token_ids)} generation ids but {len(b.generation_log_probs)} "
                       f"log probs", call)
    if not b.generation_token_ids:
        raise ctx.fail("empty generation_token_ids on a completed call", call)
    bad = invalid_logprobs(b.generation_log_probs)
    if bad:
        raise ctx.fail(f"log probs must be finite and <= 0: {bad[:3]}", call)


@check("E5")
async def sources_agree(ctx: CheckContext) -> None:
    """Every present source must agree (Gym raises on bundle/inline and inline/logprob disagreement)."""
    call = await ctx.first_turn()
    b = ctx.bundle(call)
    src = call.sources
    pairs = []
    if src.message is not None and src.inline_generation is not None:
        pairs.append(("message generation_token_ids", b.generation_token_ids, "choices[0].token_ids",
                      src.inline_generation))
        pairs.append(("message prompt_token_ids", b.prompt_token_ids, "top-level prompt_token_ids", src.inline_prompt))
    if src.logprob_ids is not None:
        pairs.append(("bundle generation ids", b.generation_token_ids, "token_id:N logprob ids", src.logprob_ids))
        if src.logprob_values is not None and b.source != "logprobs" and src.logprob_values != b.generation_log_probs \
                and src.message is not None:
            raise ctx.fail("message-level generation_log_probs differ from choice.logprobs values", call,
                           metrics={"bundle": b.generation_log_probs[:20], "logprobs": src.logprob_values[:20]})
    for la, a, lb, bb in pairs:
        if list(a) != list(bb):
            diff = token_diff(a, bb, decode=ctx.decode if ctx.has_reference else None, expected_label=la,
                              actual_label=lb)
            raise ctx.fail(f"{la} disagree with {lb} at position {diff.first_diff}", call, token_diff=diff)


@check("E6")
async def usage_counts(ctx: CheckContext) -> None:
    call = await ctx.first_turn()
    b = ctx.bundle(call)
    usage = call.response.get("usage") or {}
    want = {"prompt_tokens": len(b.prompt_token_ids), "completion_tokens": len(b.generation_token_ids)}
    got = {k: usage.get(k) for k in want}
    if got != want:
        raise ctx.fail(f"usage {got} does not count the bundle {want}", call)


@check("E7")
async def decode_consistency(ctx: CheckContext) -> None:
    call = await ctx.first_turn()
    b = ctx.bundle(call)
    ref = ctx.reference
    # servers decode the text with special tokens skipped (vLLM's default) or kept (when a tool parser needs
    # them): a sampled special token mid-generation makes the two differ, and either is a faithful decode; a
    # reasoning parser takes <think>/</think> tags out of the content wherever the model sampled them; a padding
    # row the model sampled (an id past the tokenizer, inside the model's vocabulary: E25) has no text on either side
    texts = [_THINK_TAG.sub("", ref.decode(b.generation_token_ids, skip_special_tokens=skip, unknown="drop"))
             for skip in (False, True)]
    content = _THINK_TAG.sub("", call.message.get("content") or "")
    if content.strip() and not any(content.strip() in text for text in texts):
        shown = _THINK_TAG.sub("", ref.decode(b.generation_token_ids))  # ids it has no text for shown as such
        raise ctx.fail(f"decoded generation {shown!r:.80} does not contain the content {content!r:.80}", call)
    if call.finish_reason != "length" and b.generation_token_ids and b.generation_token_ids[-1] != ref.eos:
        raise ctx.fail(f"finish_reason {call.finish_reason!r} but the last generated id "
                       f"{b.generation_token_ids[-1]} is not EOS {ref.eos}", call)


async def _tokenize(ctx: CheckContext, body: dict) -> tuple[int, object]:
    status, data = await ctx.client.tokenize(body)
    if status in (404, 405, 501):
        raise CheckSkipped(f"/tokenize not served (HTTP {status})")
    return status, data


@check("E9")
async def tokenize_shape(ctx: CheckContext) -> None:
    call = await ctx.first_turn()
    inline = call.sources is not None and (call.sources.message or call.sources.inline_prompt) is not None
    body = tokenize_body(call.request)
    status, data = await ctx.client.tokenize(body)
    tier = SHOULD if inline else "MUST"  # MUST only when Gym has to fall back to /tokenize
    if status in (404, 405, 501) and inline:
        raise CheckSkipped(f"/tokenize not served (HTTP {status}); prompt ids come inline")
    ok = status == 200 and isinstance(data, dict) and isinstance(data.get("tokens"), list) \
        and data.get("count") == len(data["tokens"])
    if not ok:
        raise ctx.fail(f"/tokenize answered HTTP {status} without {{tokens, count=len(tokens)}}", tier=tier,
                       request=body, response=data, curl=ctx.client.curl(ctx.client.root + "/tokenize", body))


@check("E10")
async def context_overflow(ctx: CheckContext) -> None:
    limit = await ctx.client.max_model_len()
    words = (limit or 32768) * 2 + 64  # comfortably over any window the server reported
    body = await ctx.client.body([{"role": "user", "content": "hello " * words}], max_tokens=16)
    url = ctx.client.api + "/chat/completions"
    resp = await ctx.client.request("POST", url, body)
    text = resp.text.lower()
    if resp.status_code != 400 or not ("context length" in text or "max_tokens" in text):
        raise ctx.fail(f"context overflow answered HTTP {resp.status_code}, expected 400 mentioning "
                       f"'context length': {resp.text[:160]!r}", request={"messages": "<long>"},
                       response=resp.text[:2000])


@check("E11")
async def n_handling(ctx: CheckContext) -> None:
    try:
        call = await ctx.client.chat([{"role": "user", "content": "Say hi."}], max_tokens=4, n=1)
    except EndpointError as exc:
        raise ctx.fail(f"n=1 rejected: {exc}", request=exc.request, response=exc.response) from None
    choices = call.response.get("choices") if isinstance(call.response, dict) else None
    if call.status != 200 or not isinstance(choices, list) or len(choices) != 1:
        raise ctx.fail(f"n=1 answered HTTP {call.status} with {len(choices or [])} choices", call)


@check("E14")
async def tool_call_shape(ctx: CheckContext) -> None:
    tools = [{"type": "function", "function": {"name": "pick", "parameters": {
        "type": "object", "properties": {"c": {"type": "string", "enum": ["a"]}}, "required": ["c"]}}}]
    # A named tool_choice makes vLLM-like servers constrain decoding, so even an untrained model emits a call --
    # once its reasoning has ended. enable_thinking=false (the Qwen3 convention, ignored by templates without it)
    # closes the think block in the prompt, so constrained decoding starts at once; a few tries for the rest.
    kwargs = {**(ctx.client.chat_template_kwargs or {}), "enable_thinking": False}
    for _ in range(3):
        try:
            call = await ctx.client.chat([{"role": "user", "content": "Pick one."}], tools=tools, max_tokens=96,
                                         tool_choice={"type": "function", "function": {"name": "pick"}},
                                         chat_template_kwargs=kwargs)
        except EndpointError as exc:
            if exc.refused:
                raise CheckSkipped(f"the endpoint declines a named tool_choice: {exc}") from None
            raise
        calls = call.message.get("tool_calls")
        if calls:
            break
    else:
        raise CheckSkipped("no tool call in 3 tries with a named tool_choice (the model reasoned through its "
                           "budget, or the endpoint does not constrain decoding)")
    for i, tc in enumerate(calls):
        fn = tc.get("function") or {}
        problems = [p for p, bad in (("id", not tc.get("id")), ("type", tc.get("type") != "function"),
                                     ("function.name", not fn.get("name")),
                                     ("function.arguments", not isinstance(fn.get("arguments"), str))) if bad]
        if not problems and isinstance(fn.get("arguments"), str):
            try:
                json.loads(fn["arguments"])
            except ValueError:
                problems.append("function.arguments (not JSON)")
        if problems:
            raise ctx.fail(f"tool_calls[{i}] has bad {', '.join(problems)}", call)


@check("E15")
async def finish_reason(ctx: CheckContext) -> None:
    """The first turn, a call cut at one token, and a short answer with room to end on its own.

    The room matters: a server that names the end-of-turn stop its own way only shows it on calls that stop.
    """
    calls = [await ctx.first_turn(), await ctx.client.chat([{"role": "user", "content": "Write a story."}], max_tokens=1),
             await ctx.client.chat([{"role": "user", "content": "Answer in one word: what colour is the sky?"}],
                                   max_tokens=256)]
    for call in calls:
        if call.finish_reason not in FINISH_REASONS:
            raise ctx.fail(f"finish_reason {call.finish_reason!r} not in {sorted(FINISH_REASONS)}", call)


@check("E16")
async def top_logprobs_null(ctx: CheckContext) -> None:
    body = await ctx.client.body([{"role": "user", "content": "Say hi."}], max_tokens=4)
    body["top_logprobs"] = None
    status, data = await ctx.client.post_json(ctx.client.api + "/chat/completions", body)
    if status == 400:
        return
    content = (((data.get("choices") or [{}])[0].get("logprobs") or {}).get("content")) if isinstance(data, dict) \
        else None
    if status != 200 or not content:
        raise ctx.fail(f"top_logprobs=null gave HTTP {status} with no per-token logprobs (silently empty)",
                       request=body, response=data, curl=ctx.client.curl(ctx.client.api + "/chat/completions", body))


@check("E17")
async def tokenize_parity(ctx: CheckContext) -> None:
    call = await ctx.first_turn()
    b = ctx.bundle(call)
    body = tokenize_body(call.request)
    status, data = await _tokenize(ctx, body)
    tokens = data.get("tokens") if isinstance(data, dict) else None
    if tokens != b.prompt_token_ids:
        diff = token_diff(b.prompt_token_ids, tokens or [], decode=ctx.decode if ctx.has_reference else None,
                          expected_label="chat prompt_token_ids", actual_label="/tokenize tokens")
        raise ctx.fail(f"/tokenize (HTTP {status}) disagrees with the chat prompt at position "
                       f"{diff.first_diff}", call, token_diff=diff)


@check("E18")
async def max_tokens_clamped(ctx: CheckContext) -> None:
    """A prompt that leaves a few tokens of room and a max_tokens far beyond it: clamp, do not refuse (§8.4).

    The prompt is sized from the endpoint's own prompt_token_ids (two calls), so no tokenizer is needed.
    """
    limit = await ctx.client.max_model_len()
    if limit is None:
        raise CheckSkipped("GET /models reports no max_model_len; the room left is unknown")
    room = 8

    async def prompt_len(words: int) -> int:
        call = await ctx.client.chat([{"role": "user", "content": "hello " * words}], max_tokens=1)
        return len(ctx.bundle(call).prompt_token_ids)
    longer = await prompt_len(32)
    per_word = (longer - await prompt_len(16)) / 16
    if per_word <= 0:
        raise CheckSkipped("cannot size a prompt: repeating a word does not lengthen the prompt")
    words = 32 + int((limit - room - longer) / per_word)
    refused = f"max_tokens={limit} with a prompt that leaves about {room} tokens of room answered"
    try:
        call = await ctx.client.chat([{"role": "user", "content": "hello " * words}], max_tokens=limit)
    except EndpointError as exc:
        raise ctx.fail(f"{refused} HTTP {exc.status} instead of clamping to max_model_len - len(prompt)",
                       request=exc.request, response=exc.response) from None
    if call.incomplete:  # a 400 naming the context length: Gym drops the turn
        raise ctx.fail(f"{refused} HTTP 400 (context length) instead of clamping to max_model_len - "
                       f"len(prompt)", call)
    bundle = call.bundle
    if bundle is not None and len(bundle.prompt_token_ids) + len(bundle.generation_token_ids) > limit:
        raise ctx.fail(f"prompt ({len(bundle.prompt_token_ids)}) + generation "
                       f"({len(bundle.generation_token_ids)}) exceeds max_model_len {limit}", call)


@check("E19")
async def token_id_strings(ctx: CheckContext) -> None:
    call = await ctx.first_turn()
    src = call.sources
    if src is None or src.logprob_ids is None:
        raise ctx.fail(f"logprob tokens are not 'token_id:N' with return_tokens_as_token_ids: "
                       f"{(src.logprobs_problem if src else 'no choices')}", call)
    if src.inline_prompt is not None and src.inline_generation is None:
        raise ctx.fail("return_token_ids gave prompt_token_ids but null choices[0].token_ids", call)


def _model_vocab_size(ctx: Context) -> int | None:
    """The model's embedding rows, from config.json beside the weights (--rescore-model) or the tokenizer."""
    return ctx.model_vocab_size


@check("E23")
async def error_body_shape(ctx: CheckContext) -> None:
    """A malformed body (``messages`` not a list) answers 4xx with ``{"error": {"message", "type", "code"}}``
    (MAY: Gym matches error text, not shape; graded INFO)."""
    body = {"model": await ctx.client.resolve_model(), "messages": "not a list", "max_tokens": 1}
    status, data = await ctx.client.post_json(ctx.client.api + "/chat/completions", body)
    error = data.get("error") if isinstance(data, dict) else None
    missing = [k for k in ("message", "type", "code") if not isinstance(error, dict) or k not in error]
    if not 400 <= status < 500 or missing:
        raise ctx.fail(f"a malformed body answered HTTP {status} with "
                       f"{'no error object' if not isinstance(error, dict) else 'error missing ' + str(missing)}"
                       f" (OpenAI shape: {{\"error\": {{\"message\", \"type\", \"code\"}}}})",
                       request=body, response=data, curl=ctx.client.curl(ctx.client.api + "/chat/completions", body))


@check("E25")
async def emitted_ids_accepted(ctx: CheckContext) -> None:
    """An id past the tokenizer but inside the model's vocabulary, carried back, is served, not refused.

    Models sample such padding rows (NVIDIA-NeMo/RL#237 saw 151708 on Qwen); a server that validates carried
    ids against the tokenizer's length instead of the model's vocabulary crashes the rollout that emitted it.
    """
    ref = ctx.reference
    model_vocab, tokenizer_size = _model_vocab_size(ctx), len(ref.tok)
    if model_vocab is None or model_vocab <= tokenizer_size or ref.eos is None:
        raise CheckSkipped(f"no id between the tokenizer's length ({tokenizer_size}) and the model's vocab_size "
                           f"({model_vocab}); needs a model config.json beside --tokenizer or --rescore-model")
    extra = tokenizer_size  # the first embedding row with no token: an id the model can sample

    try:
        r = ctx.rollout(max_tokens=4)
        r.user("Say hello.")
        text_ids = ref.encode("Hello")
        await r.replay(parse_generation(ref.decode(text_ids)), [*text_ids, extra, ref.eos])
        r.user("Thanks.")
        await r.generate(max_tokens=1)
        steps = r.steps
    except EndpointError as exc:
        if exc.refused:
            evidence = ctx.endpoint_failure(exc).evidence
            evidence.verdict = (f"refused a carried generation holding id {extra}, which the model can emit "
                                f"(vocab_size {model_vocab}, tokenizer length {tokenizer_size}): {exc}")
            raise CheckFailure(ctx.check_id, evidence.verdict, evidence) from None
        raise
    ctx.assert_continuity(steps, label=f"generation carrying model-only id {extra}")
