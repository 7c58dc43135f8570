"""R10, the load tier: N concurrent Gym-like multi-turn sessions over the data-parallel endpoints (``--load N``).

Each session is one rollout as Gym's simple agent drives it: a user turn, a sampled call with the tool offered,
the tool's output when the model called it (a user follow-up otherwise), the token bundle carried back on every
assistant message; sessions go to endpoints by Gym's own affinity rule (``SessionRouter``: the --gym-version's). With
``--load-duration`` every session starts a new rollout as soon as one ends, until the time is up.

What is checked under load is what the single-session checks check alone, where batching, prefix caching and a
refit can break it:

- continuity (I1) between every pair of consecutive calls of every rollout (MUST);
- every session got its own prompt: each rollout's first request, sent again alone afterwards, is served the same
  prompt ids (an answer meant for another session, or a render that depends on the batch, differs) (MUST);
- with ``--refit-url`` and ``--rescore-model``: the refit hook is called halfway through; no response may be
  served partly by the old weights and partly by the new ones, none sent after the hook answered may be served by
  the old ones, and no rollout may go back from the new weights to the old (MUST);
- every call answered (SHOULD), and without a 5xx even where Gym's retries then got an answer (SHOULD);
- the concurrency at least ``--load-threshold`` (SHOULD).

Throughput, p50/p99 latency and errors per endpoint are the evidence's ``metrics`` whatever the verdict.
"""
from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

from ..client import GymClient, Rollout, SessionRouter, Step
from ..core import MUST, SHOULD, EndpointError, EndpointStopped, Evidence, Timed, endpoint_figures, max_in_flight, prefix_difference, \
    served_by, token_diff, went_back
from ._context import CheckContext, Context, client_for
from ._tools import TOOLS

CITIES = ("Paris", "Oslo", "Lima", "Cairo", "Quito", "Perth", "Dakar", "Turin")
SOLO_SAMPLE = 64     # first calls re-sent alone after the load (all of them for a run of up to this many rollouts)
RESCORE_SAMPLE = 64  # calls rescored with the new weights after a refit under load


@dataclass(frozen=True)
class LoadPlan:
    sessions: int
    duration: float | None = None  # keep every session busy this long; None: one rollout per session
    threshold: int = 2000          # R10's bar for the concurrency (2,000 in Gym's docs)
    turns: int = 3
    max_tokens: int = 16


@dataclass
class Call:
    rollout: str
    turn: int
    timed: Timed
    step: Step | None = None


@dataclass
class LoadRun:
    plan: LoadPlan
    endpoints: list[str]
    calls: list[Call] = field(default_factory=list)
    rollouts: dict[str, Rollout] = field(default_factory=dict)
    wall_s: float = 0.0
    refit: tuple[float, float, Any] | None = None  # (sent, answered, the hook's answer)
    server_errors: int = 0                  # 5xx answers, retried by Gym's rules or not (see Stats.server_errors)
    first_server_error: str | None = None


def _session_turn(r: Rollout, sid: str, turn: int, step: Step) -> None:
    """What the agent adds after a call: the tool's output for each call the model made, else a user follow-up."""
    calls = step.call.message.get("tool_calls") or []
    for tc in calls:
        r.tool_output(tc.get("id") or f"call_{turn}", f"[{sid}] 18 degrees, sunny")
    if not calls:
        r.user(f"[{sid}] Thanks. And tomorrow?")


async def _rollout(run: LoadRun, clients: list[GymClient], router: SessionRouter, ctx: Context, sid: str) -> bool:
    """One rollout; False when its endpoint has stopped answering (the client's breaker or the run's deadline), so
    the session starts no more: a stopped client fails at once, and a session looping on it would spin."""
    index = router.route(sid)
    r = Rollout(clients[index], tools=TOOLS, max_tokens=run.plan.max_tokens,
                chat_template_kwargs=ctx.target.chat_template_kwargs or None)
    run.rollouts[sid] = r
    r.user(f"[{sid}] What is the weather in {CITIES[sum(map(ord, sid)) % len(CITIES)]}?")
    for turn in range(run.plan.turns):
        t0 = time.monotonic()
        try:
            step = await r.generate()
        except EndpointError as exc:
            run.calls.append(Call(sid, turn, Timed(run.endpoints[index], t0, time.monotonic(), str(exc)[:300])))
            return not isinstance(exc, EndpointStopped)
        run.calls.append(Call(sid, turn, Timed(run.endpoints[index], t0, time.monotonic()), step))
        _session_turn(r, sid, turn, step)
    return True


async def _refit_halfway(run: LoadRun, ctx: Context, planned_calls: int, t_end: float | None,
                         first_round_done: asyncio.Event, answered: asyncio.Event) -> None:
    """Call the refit hook once half the planned calls are answered (half the duration, with ``--load-duration``)."""
    try:
        if t_end is not None:
            await asyncio.sleep(max(0.0, t_end - run.plan.duration / 2 - time.monotonic()))
        while t_end is None and len(run.calls) < planned_calls // 2 and not first_round_done.is_set():
            await asyncio.sleep(0.05)
        sent = time.monotonic()
        try:
            status, answer = await ctx.client.post_json(ctx.target.refit_url, {"path": ctx.target.rescore_model})
        except EndpointError as exc:
            status, answer = None, str(exc)
        run.refit = (sent, time.monotonic(), (status, answer))
    finally:
        answered.set()


def after_refit_rollouts(plan: LoadPlan) -> int:
    """Sessions that make sure to start a rollout after the refit hook has answered: enough calls for half the
    rescoring sample, so stale weights after the refit always have calls to show in, however long the refit took
    against the rest of the load (or against ``--load-duration``)."""
    return min(plan.sessions, -(-(RESCORE_SAMPLE // 2) // plan.turns))


async def drive(contexts: list[Context], plan: LoadPlan, *, refit: bool = False) -> LoadRun:
    """Run the load: ``plan.sessions`` concurrent sessions over every context's endpoint, one client each."""
    first = contexts[0]
    model = await first.client.resolve_model()
    clients = [client_for(c.target, model=model, concurrency=plan.sessions, breaker_threshold=plan.sessions + 3,
                          transport=c.client.transport) for c in contexts]
    run = LoadRun(plan, [c.target.endpoint for c in contexts])
    router = SessionRouter(len(clients), first.client.gym)  # Gym's affinity, as the client's Gym version does it
    t0 = time.monotonic()
    t_end = t0 + plan.duration if plan.duration else None

    first_round_done, refit_answered = asyncio.Event(), asyncio.Event()
    first_round = [asyncio.Event() for _ in range(plan.sessions)]

    async def session(i: int) -> None:
        k, after_refit, going = 0, False, True
        while going:
            after_refit = refit_answered.is_set()
            going = await _rollout(run, clients, router, first, f"s{i:05d}r{k}")
            k += 1
            first_round[i].set()
            if all(e.is_set() for e in first_round):
                first_round_done.set()
            if t_end is None or time.monotonic() >= t_end:
                break
        if going and refit and not after_refit and i < after_refit_rollouts(plan):
            await refit_answered.wait()
            await _rollout(run, clients, router, first, f"s{i:05d}r{k}")

    try:
        jobs = [asyncio.gather(*(session(i) for i in range(plan.sessions)))]
        if refit:
            jobs.append(_refit_halfway(run, first, plan.sessions * plan.turns, t_end, first_round_done,
                                       refit_answered))
        await asyncio.gather(*jobs)
    finally:
        run.wall_s = time.monotonic() - t0
        for c in clients:
            run.server_errors += c.stats.server_errors
            run.first_server_error = run.first_server_error or c.stats.first_server_error
            await c.aclose()
    return run


# -- verdicts -----------------------------------------------------------------------------------------------

def _steps(run: LoadRun, sid: str) -> list[Call]:
    return sorted((c for c in run.calls if c.rollout == sid and c.step is not None), key=lambda c: c.turn)


def continuity_breaks(run: LoadRun) -> list[tuple[str, int, Step, Step, int]]:
    """(rollout, turn, before, after, position) for every consecutive pair whose prompt does not extend P_k + G_k."""
    out = []
    for sid in run.rollouts:
        steps = [c.step for c in _steps(run, sid)]
        for k in range(len(steps) - 1):
            before, after = steps[k], steps[k + 1]
            if after.client_findings:
                continue  # the client broke this history (an old Gym version); not the endpoint's doing
            pos = prefix_difference(before.bundle.prompt_token_ids + before.bundle.generation_token_ids,
                                    after.bundle.prompt_token_ids)
            if pos is not None:
                out.append((sid, k + 2, before, after, pos))
    return out


async def solo_mismatches(run: LoadRun, contexts: list[Context]) -> list[tuple[Step, list[int]]]:
    """First calls re-sent alone (1 token) to the endpoint that served them: (the call under load, the prompt served
    alone) where the two differ."""
    by_url = {c.target.endpoint: c for c in contexts}
    firsts = [c for c in run.calls if c.turn == 0 and c.step is not None]
    out = []
    for c in random.Random(0).sample(firsts, min(SOLO_SAMPLE, len(firsts))):
        body = {**c.step.call.request, "max_tokens": 1}
        alone = await by_url[c.timed.endpoint].client.chat(body["messages"], raw_body=body)
        if alone.bundle is not None and alone.bundle.prompt_token_ids != c.step.bundle.prompt_token_ids:
            out.append((c.step, alone.bundle.prompt_token_ids))
    return out


async def weights_after_refit(run: LoadRun, rescore) -> dict[str, Any]:
    """Which weights served the calls answered after the refit was sent (a sample, in-flight calls first)."""
    sent, answered, _ = run.refit
    later = [c for c in run.calls if c.step is not None and c.timed.end > sent
             and len(c.step.bundle.generation_token_ids) >= 1 + 3]
    in_flight = [c for c in later if c.timed.start < answered]
    after = [c for c in later if c.timed.start >= answered]
    # half the sample from each side of the hook's answer (the other side's share when one side is short): in-flight
    # calls are where weights get mixed, later ones where stale weights show
    rng = random.Random(0)
    n_after = min(len(after), max(RESCORE_SAMPLE // 2, RESCORE_SAMPLE - len(in_flight)))
    n_in = min(len(in_flight), RESCORE_SAMPLE - n_after)
    sample = rng.sample(in_flight, n_in) + rng.sample(after, n_after)
    verdicts: dict[int, str] = {}
    for c in sample:
        b = c.step.bundle
        rescored = (await rescore(b.prompt_token_ids + b.generation_token_ids))[len(b.prompt_token_ids):]
        verdicts[id(c)] = served_by(b.generation_log_probs, rescored)
    by_rollout: dict[str, list[str]] = {}
    for c in sorted(sample, key=lambda c: (c.rollout, c.turn)):
        by_rollout.setdefault(c.rollout, []).append(verdicts[id(c)])
    return {
        "rescored": len(sample), "in_flight": len(in_flight),
        "mixed": [c for c in sample if verdicts[id(c)] == "mixed"],
        "stale": [c for c in sample if c.timed.start >= answered and verdicts[id(c)] != "new"],
        "went_back": [sid for sid, vs in by_rollout.items() if went_back(vs)],
        "counts": {v: sum(1 for x in verdicts.values() if x == v) for v in ("old", "mixed", "new")},
    }


def figures(run: LoadRun) -> dict[str, Any]:
    timed = [c.timed for c in run.calls]
    return {"sessions": run.plan.sessions, "rollouts": len(run.rollouts), "calls": len(run.calls),
            "errors": sum(1 for t in timed if t.error), "server_errors": run.server_errors,
            "max_in_flight": max_in_flight(timed),
            "wall_s": round(run.wall_s, 2), "threshold": run.plan.threshold,
            "per_endpoint": endpoint_figures(timed, run.wall_s)}


def _summary(m: dict[str, Any]) -> str:
    per = "; ".join(f"{url}: {f['throughput_per_s']}/s, p50 {f['p50_s']}s, p99 {f['p99_s']}s, {f['errors']} errors"
                    for url, f in m["per_endpoint"].items())
    return (f"{m['sessions']} concurrent sessions ({m['rollouts']} rollouts, {m['calls']} calls, at most "
            f"{m['max_in_flight']} in flight) in {m['wall_s']}s — {per}")


async def judge(ctx: CheckContext, contexts: list[Context], plan: LoadPlan) -> Evidence:
    """Drive the load and judge it: raises this check's failure (tier by what broke), else the passing evidence."""
    refit = bool(ctx.target.refit_url and ctx.target.rescore_model)
    run = await drive(contexts, plan, refit=refit)
    metrics = figures(run)
    notes = [_summary(metrics)]

    breaks = continuity_breaks(run)
    metrics["continuity_breaks"] = len(breaks)
    if breaks:
        sid, turn, before, after, pos = breaks[0]
        expected = before.bundle.prompt_token_ids + before.bundle.generation_token_ids
        decode = ctx.reference.decode if ctx.has_reference else None
        diff = token_diff(expected, after.bundle.prompt_token_ids, decode=decode, prefix=True,
                          expected_label=f"P_{turn - 1} + G_{turn - 1}", actual_label=f"P_{turn}")
        raise ctx.fail(f"under load, {len(breaks)} of {len(run.rollouts)} rollouts broke continuity: rollout {sid} "
                       f"turn {turn} prompt departs from the previous prompt + generation at position {pos}",
                       after.call, tier=MUST, token_diff=diff, metrics=metrics, notes=notes)

    mismatched = await solo_mismatches(run, contexts)
    metrics["solo_mismatches"] = len(mismatched)
    if mismatched:
        step, alone = mismatched[0]
        diff = token_diff(alone, step.bundle.prompt_token_ids, decode=ctx.reference.decode if ctx.has_reference
                          else None, expected_label="prompt served alone", actual_label="prompt served under load")
        raise ctx.fail(f"under load, {len(mismatched)} first calls were served a prompt other than the one the same "
                       f"request gets alone (an answer meant for another session, or a render that depends on the "
                       f"batch); first difference at position {diff.first_diff}", step.call, tier=MUST,
                       token_diff=diff, metrics=metrics, notes=notes)

    if refit:
        from .fidelity import _rescore
        sent, answered, (status, answer) = run.refit
        if status != 200:
            raise ctx.fail(f"the refit hook answered HTTP {status} under load: {str(answer)[:200]}", tier=MUST,
                           request={"path": ctx.target.rescore_model}, response=answer, metrics=metrics, notes=notes)
        w = await weights_after_refit(run, lambda ids: _rescore(ctx.session, ids))
        metrics["refit"] = {"sent_s": round(sent - (run.calls[0].timed.start if run.calls else sent), 2),
                            "took_s": round(answered - sent, 3), "rescored": w["rescored"],
                            "in_flight": w["in_flight"], **w["counts"], "went_back": len(w["went_back"])}
        notes.append(f"refit under load: {metrics['refit']}")
        for bad, what in ((w["mixed"], "started on the old weights and ended on the new ones (the refit landed "
                                       "mid-generation)"),
                          (w["stale"], "were sent after the refit hook answered yet served by other weights than "
                                       "the ones it loaded")):
            if bad:
                c = bad[0]
                raise ctx.fail(f"refit under load: {len(bad)} of {w['rescored']} rescored responses {what}; e.g. "
                               f"rollout {c.rollout} turn {c.turn + 1}", c.step.call, tier=MUST, metrics=metrics,
                               notes=notes)
        if w["went_back"]:
            raise ctx.fail(f"refit under load: {len(w['went_back'])} rollouts were served by the new weights, then "
                           f"by the old ones (e.g. {w['went_back'][0]})", tier=MUST, metrics=metrics, notes=notes)

    if metrics["errors"]:
        first = next(c.timed.error for c in run.calls if c.timed.error)
        raise ctx.fail(f"under load, {metrics['errors']} of {metrics['calls']} calls got no usable answer; the first: "
                       f"{first}", tier=SHOULD, metrics=metrics, notes=notes)
    if run.server_errors:
        # every call got its answer in the end, but only because Gym retries a 500: the endpoint shed the load
        raise ctx.fail(f"under load, {run.server_errors} requests were answered with a server error and answered "
                       f"only when retried (an endpoint that sheds concurrent load with 5xx does not sustain it); "
                       f"the first: {run.first_server_error}", tier=SHOULD, metrics=metrics, notes=notes)
    if plan.sessions < plan.threshold:
        raise ctx.fail(f"sustained {plan.sessions} concurrent sessions without a fault, below R10's bar of "
                       f"{plan.threshold} (--load-threshold)", tier=SHOULD, metrics=metrics, notes=notes)
    return ctx.evidence(f"sustained {plan.sessions} concurrent sessions: every call answered, continuity kept, "
                        "every session served its own prompt" + (", the refit clean" if refit else ""),
                        metrics=metrics, notes=notes)


LOAD_CHECKS = ("R10",)


def run_load(contexts: list[Context], plan: LoadPlan) -> Evidence:
    """R10 on the session's event loop, for the synchronous pytest item: the passing evidence, or the failure."""
    bound = contexts[0].bind("R10")

    async def go() -> Evidence:
        try:
            return await judge(bound, contexts, plan)
        except EndpointStopped:
            raise
        except EndpointError as exc:  # the solo re-sends or the model lookup: the endpoint's failure, not ours
            raise bound.endpoint_failure(exc) from None
    return contexts[0].run(go())
