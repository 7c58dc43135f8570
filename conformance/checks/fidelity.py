"""Logprob fidelity (SHOULD): teacher-forced rescoring (M24, P16) and temperature semantics (E20, P15)."""
from __future__ import annotations

import math

from ..core import CheckSkipped, EndpointError, logprob_metrics
from ._context import CheckContext, Context
from ._registry import check

MULT_PROB_MAX, K3_MAX, TAU, TOL = 1.05, 1e-3, 0.6, 0.02


async def _prompt_logprobs(ctx: Context, ids: list[int], temperature: float) -> list[float | None]:
    """Per-position log prob of each given id, from ``/v1/completions`` with a token-id prompt."""
    body = {"model": await ctx.client.resolve_model(), "prompt": ids, "max_tokens": 1, "temperature": temperature,
            "prompt_logprobs": 0, "logprobs": 0}
    status, data = await ctx.client.post_json(ctx.client.api + "/completions", body)
    if status in (404, 405, 501):
        raise CheckSkipped(f"/v1/completions not served (HTTP {status}); no teacher-forced rescoring path")
    try:
        rows = data["choices"][0]["prompt_logprobs"]
    except (KeyError, IndexError, TypeError):
        raise CheckSkipped(f"/v1/completions gave HTTP {status} without prompt_logprobs") from None
    out: list[float | None] = []
    for tid, row in zip(ids, rows):
        entry = (row or {}).get(str(tid))
        out.append(entry.get("logprob") if isinstance(entry, dict) else None)
    return out


def _local_rescorer(path: str):
    """log p(ids[t] | ids[:t]) from a local copy of the trainer's weights, at temperature 1 (M24's setting)."""
    try:
        import torch
        from transformers import AutoModelForCausalLM
    except ImportError as exc:
        raise CheckSkipped(f"--rescore-model needs torch and transformers ({exc})") from None
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    def rescore(ids: list[int]) -> list[float | None]:
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].float()
        lp = torch.log_softmax(logits[:-1], dim=-1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
        return [None, *lp.tolist()]
    return rescore


def _rescore_source(ctx: Context) -> str:
    path = ctx.target.rescore_model
    return f"local model {path}" if path else "the endpoint's /v1/completions"


async def _rescore(ctx: Context, ids: list[int]) -> list[float | None]:
    """log p(ids[t] | ids[:t]) at τ=1: from ``--rescore-model`` when given, else the endpoint's own rescoring."""
    path = ctx.target.rescore_model
    if path:
        return (await ctx.probe(f"rescorer:{path}", lambda: _local_rescorer(path)))(ids)
    return await _prompt_logprobs(ctx, ids, 1.0)


async def _rescore_generation(ctx: Context, bundle) -> list[float | None]:
    """The model's log prob of each generated id given everything before it."""
    n = len(bundle.prompt_token_ids)
    return (await _rescore(ctx, bundle.prompt_token_ids + bundle.generation_token_ids))[n:]


async def _rescored_calls(ctx: CheckContext, key: str = "rescored-calls"):
    """Three sampled calls at τ=1 and, per call, (served, rescored) generation log probs; shared by M24 and E26
    (``key`` names the memo: R8 needs calls made after its refit)."""
    source = _rescore_source(ctx)

    async def probe():
        # three calls, more while they end too early to compare positions (up to six)
        questions = ("Describe the sea.", "List three animals.", "Say something.", "Name a city.", "Count to ten.",
                     "Describe a tree.")
        calls = []
        for i, q in enumerate(questions):
            calls.append(await ctx.client.chat([{"role": "user", "content": q}], max_tokens=16, temperature=1.0))
            positions = sum(max(0, len(c.bundle.generation_token_ids) - 1) for c in calls if c.bundle is not None)
            if i >= 2 and positions >= 8:
                break
        pairs = [None if c.bundle is None else (list(c.bundle.generation_log_probs),
                                                 await _rescore_generation(ctx, c.bundle)) for c in calls]
        return calls, pairs
    calls, pairs = await ctx.probe(key, probe)
    for call in calls:
        ctx.bundle(call)  # a call without a bundle fails the check asking (the memo is shared)
    if any(x is None for _, rescored in pairs for x in rescored):
        raise CheckSkipped("rescoring returned no log prob for some generated ids")
    return calls, pairs, source


PLOTTED = 512  # positions kept in the evidence


def _off_policy(pairs: list[tuple[list[float], list[float]]]) -> tuple[dict, str | None]:
    """M24's metrics over every position, and the sentence naming the bounds they break (None: within them)."""
    served, rescored = [x for s, _ in pairs for x in s], [x for _, r in pairs for x in r]
    m = logprob_metrics(rescored, served)
    if m["token_mult_prob_error"] <= MULT_PROB_MAX and m["k3_kl"] <= K3_MAX:
        return m, None
    # the positions themselves, for the report's served-vs-rescored scatter and per-position plot
    m["served_logprobs"] = [round(x, 5) for x in served[:PLOTTED]]
    m["rescored_logprobs"] = [round(x, 5) for x in rescored[:PLOTTED]]
    return m, (f"token_mult_prob_error {m['token_mult_prob_error']:.4f} (max {MULT_PROB_MAX}), k3 KL "
               f"{m['k3_kl']:.2e} (max {K3_MAX:g}), max |Δ| {m['max_abs_diff']:.3f}" + _hint(served, rescored))


@check("M24")
async def rescore_fidelity(ctx: CheckContext) -> None:
    calls, pairs, source = await _rescored_calls(ctx)
    metrics, broken = _off_policy(pairs)
    if broken:
        raise ctx.fail(f"teacher-forced rescoring with {source} disagrees: {broken}", calls[-1],
                       metrics=metrics)


@check("R8")
async def refit_followed(ctx: CheckContext) -> None:
    """Refit through the framework's own hook, then M24's rescoring against the weights it was told to load.

    An endpoint that acknowledges a refit but keeps serving the old weights (a rank the reload RPC missed, a
    stale prefix cache) makes every later rollout off-policy: the trainer's log probs and the rollout's differ.
    """
    path, url = ctx.target.rescore_model, ctx.target.refit_url
    if not (path and url):
        raise CheckSkipped("needs --refit-url (the endpoint's weight-refit hook) and --rescore-model (the weights)")
    status, answer = await ctx.client.post_json(url, {"path": path})
    if status != 200:
        raise ctx.fail(f"the refit hook answered HTTP {status}", request={"path": path}, response=answer,
                       curl=ctx.client.curl(url, {"path": path}))
    calls, pairs, _ = await _rescored_calls(ctx, key="rescored-after-refit")
    metrics, broken = _off_policy(pairs)
    if broken:
        raise ctx.fail(f"after a refit to {path} (acknowledged: {str(answer)[:80]}), served log probs still "
                       f"disagree with those weights: {broken}: stale weights", calls[-1], metrics=metrics)


def _hint(served: list[float], rescored: list[float]) -> str:
    """Served log probs systematically above the model's: the sampler renormalised (top-k/top-p pin missing)."""
    bias = sum(s - r for s, r in zip(served, rescored)) / max(1, len(served))
    return f"; served log probs are {bias:+.2f} nats above the model's on average (renormalised by top-k/top-p " \
           f"from generation_config.json?)" if bias > 0.05 else ""


@check("E20")
async def processed_logprobs(ctx: CheckContext) -> None:
    """Top-20 log probs of the first generated position at τ=1 predict the processed ones at τ=0.6.

    Raw-mode servers return the τ=1 values unchanged at τ=0.6 (D28). Comparing differences between tokens
    makes the prediction exact without the full vocabulary.
    """
    messages = [{"role": "user", "content": "Pick a number."}]

    async def top(temp: float) -> dict[int, float]:
        body = await ctx.client.body(messages, max_tokens=1, temperature=temp)
        body["top_logprobs"] = 20  # the probe needs the distribution, not only the sampled token
        call = await ctx.client.chat(messages, raw_body=body)
        content = ((call.response.get("choices") or [{}])[0].get("logprobs") or {}).get("content") or []
        if not content or not content[0].get("top_logprobs"):
            raise CheckSkipped("the endpoint returned no top_logprobs; temperature semantics not observable")
        return {int(e["token"].split(":")[1]): e["logprob"] for e in content[0]["top_logprobs"]
                if str(e.get("token", "")).startswith("token_id:")}
    base, hot = await top(1.0), await top(TAU)
    common = [t for t in hot if t in base]
    if len(common) < 2:
        raise CheckSkipped("fewer than two common top tokens between the two temperatures")
    # Differences between tokens cancel the normaliser: processed gives (z_a - z_b)/τ, raw gives z_a - z_b.
    ref_tok = max(common, key=lambda t: base[t])
    seen = {t: hot[t] - hot[ref_tok] for t in common}
    err_processed = max(abs(seen[t] - (base[t] - base[ref_tok]) / TAU) for t in common)
    err_raw = max(abs(seen[t] - (base[t] - base[ref_tok])) for t in common)
    metrics = {"max_abs_diff_vs_processed": err_processed, "max_abs_diff_vs_raw": err_raw, "tokens": len(common),
               "temperature": TAU}
    if err_processed > TOL and err_raw <= TOL:
        raise ctx.fail(f"log probs at temperature {TAU} keep the τ=1 differences (max |Δ| {err_raw:.3f}), "
                       f"not log_softmax(logits/τ) (max |Δ| {err_processed:.3f}): raw logprobs", metrics=metrics)
    if err_processed > TOL:
        raise ctx.fail(f"log probs at temperature {TAU} match neither processed nor raw semantics "
                       f"(max |Δ| {err_processed:.3f})", metrics=metrics)


def alignment_errors(pairs: list[tuple[list[float], list[float]]]) -> dict[int, float]:
    """Mean |served[i] - rescored[i + d]| for d in (-1, 0, +1), over every call's positions where both exist."""
    out: dict[int, float] = {}
    for d in (-1, 0, 1):
        diffs = [abs(s[i] - r[i + d]) for s, r in pairs for i in range(len(s)) if 0 <= i + d < len(r)]
        out[d] = sum(diffs) / len(diffs) if diffs else math.nan
    return out


# In place the served and rescored values differ by at least this much (M24's tolerance: about 0.05 nats a
# position for token_mult_prob_error 1.05) and an offset fits three times better. Not an absolute 0.2: on a
# near-uniform model neighbouring log probs differ by only ~0.18, and a shifted bundle matches its offset exactly.
ALIGN_MIN_ERR, ALIGN_RATIO = 0.05, 3.0


def misalignment(err: dict[int, float]) -> int | None:
    """The offset (-1 or +1) the served log probs fit instead of in place, or None when in place fits."""
    shift = min((-1, 1), key=lambda d: err[d])
    return shift if err[0] > ALIGN_MIN_ERR and err[shift] * ALIGN_RATIO < err[0] else None


@check("E26")
async def logprob_alignment(ctx: CheckContext) -> None:
    """Not a tolerance question (that is M24): a log prob reported at the wrong position is a structural bundle
    defect. Rescoring matches in place on any honest endpoint and one position off on a shifted one."""
    calls, pairs, source = await _rescored_calls(ctx)
    if sum(max(0, len(s) - 1) for s, _ in pairs) < 3:
        raise CheckSkipped("fewer than 3 generated positions after the first; alignment not observable")
    err = alignment_errors(pairs)
    shift = misalignment(err)
    if shift is not None:
        where = "late (each belongs to the token before)" if shift == -1 else "early (each belongs to the token after)"
        raise ctx.fail(f"generation_log_probs are one position {where}: rescoring with {source} matches "
                       f"at offset {shift:+d} (mean |Δ| {err[shift]:.3f}) and not in place (mean |Δ| "
                       f"{err[0]:.3f})", calls[-1],
                       metrics={"mean_abs_diff_offset_-1": err[-1], "mean_abs_diff_in_place": err[0],
                                "mean_abs_diff_offset_+1": err[1]})


RENORMALISED_GAP = 0.05  # nats: mean (served - model) log prob above which the sampler truncated and renormalised
LIFTED_SHARE = 0.8       # ... provided (nearly) every position was lifted, as renormalisation does


@check("E13")
async def sampling_pin(ctx: CheckContext) -> None:
    """P25: a call with ``top_p`` left unset and one that sends ``top_k: 20`` are either refused or sampled from
    the full τ=1 distribution. Served log probs above the model's own mean the sampler truncated the vocabulary
    and renormalised: an unset ``top_p``/``top_k`` resolved from ``generation_config.json`` (vLLM's default), or
    the ``top_k`` applied -- either way not the distribution the policy is trained under."""
    probes = (("top_p left unset", lambda b: b.pop("top_p", None)), ("top_k: 20 sent", lambda b: b.update(top_k=20)))
    source = _rescore_source(ctx)
    for label, tweak in probes:
        messages = [{"role": "user", "content": "Describe the sea."}]
        try:
            body = await ctx.client.body(messages, max_tokens=16, temperature=1.0)
            tweak(body)
            call = await ctx.client.chat(messages, raw_body=body)
            rescored = await _rescore_generation(ctx, ctx.bundle(call))
        except EndpointError as exc:
            if exc.refused:
                continue  # refused: the pin's other right answer
            raise
        served = call.bundle.generation_log_probs
        pairs = [(s, r) for s, r in zip(served, rescored) if r is not None]
        if not pairs:
            raise CheckSkipped("rescoring returned no log probs for the generated ids")
        gap = sum(s - r for s, r in pairs) / len(pairs)
        # Renormalising over a truncated vocabulary lifts *every* kept token by -log(kept mass) >= 0; stale
        # weights or misaligned log probs scatter both ways, so they are not mistaken for it here.
        lifted = sum(s - r > 1e-3 for s, r in pairs) / len(pairs)
        if gap > RENORMALISED_GAP and lifted >= LIFTED_SHARE:
            raise ctx.fail(f"with {label}, served log probs are {gap:+.2f} nats above the model's full τ=1 "
                           f"distribution ({source}): the sampler truncated and renormalised (top-k/top-p "
                           f"from generation_config.json or the request), off the training profile (P25)",
                           call, metrics={"mean_served_minus_model": gap, "share_lifted": lifted,
                                          "tokens": len(pairs)})
