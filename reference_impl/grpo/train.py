"""The reference GRPO loop, top to bottom. ``gym-conformance train --task arith`` runs it.

Each step: (1) refit the server(s) with the trainer's weights and prove it with a probe (R8); (2) roll out
``rows_per_step`` rows × ``group_size`` samples through the environment; (3) build sequences from the served
ids only (R3, R4, R11); (4) group advantages; (5) one clipped policy-gradient update; (6) one JSON line in
``metrics.jsonl``. Validation reward every ``val_every`` steps, a checkpoint every ``checkpoint_every``.
Data parallel with no code change under ``torchrun`` (gloo on CPU, NCCL on GPU): every rank rolls out its
share of the rows, the loss is normalised by the global token count and gradients are summed.
"""
from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import random
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import torch

from fixtures import fixture_path, tasks

from . import checkpoint, dumps, servers
from .advantages import group_advantages, zero_std_fraction
from .config import Config
from .logprobs import token_logprobs
from .loss import collate, grpo_loss
from .rollout import Agent, Rollout, run_rollouts, session
from .sequences import ContiguityError, build_sequence, has_nan


class RunError(RuntimeError):
    """The run cannot go on; the message is one line a person can act on (the CLI exits 2)."""


# -- data parallel (torch.distributed), a no-op in one process -------------------------------------------
@dataclass
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, x: float) -> float:
        if self.size == 1:
            return x
        t = torch.tensor([x], dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return float(t)

    def gather(self, obj):
        if self.size == 1:
            return [obj]
        out = [None] * self.size
        torch.distributed.all_gather_object(out, obj)
        return out

    def broadcast(self, obj):
        if self.size == 1:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def reduce_grads(self, model) -> None:
        if self.size == 1:
            return
        for p in model.parameters():
            if p.grad is not None:
                torch.distributed.all_reduce(p.grad)  # each rank's loss is already divided by the global count


def init_world() -> World:
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return World(torch.distributed.get_rank(), size)


# -- one optimisation step on sequences that are already built --------------------------------------------
def train_step(model, optimizer, seqs, advantages, cfg: Config, world: World, *, pad_id: int, step: int = 1,
               ref_model=None, trainer_logprobs: list | None = None) -> dict:
    """``updates_per_batch`` updates on this rank's sequences; identical to one process holding the global batch.
    ``trainer_logprobs``, when given, receives each sequence's trainer log probs before the first update."""
    batch = collate(seqs, advantages, pad_id)
    local = float(batch.mask.sum()) if cfg.aggregation == "token" else float(len(seqs))
    normalizer = max(world.sum(local), 1.0)
    model.train()
    ref_logp = None
    if cfg.kl_coef and ref_model is not None:
        with torch.no_grad():
            ref_logp = token_logprobs(ref_model, batch.ids, batch.attention, batch.mask)
    # No signal (every group zero-std): no step at all. Adam would still move every weight along its momentum
    # (m/sqrt(v) decays slowly), which drifted a tiny policy into garbage within a few silent steps.
    signal = world.sum(float(batch.advantages.abs().sum())) > 0
    first_logp, metrics, losses = None, {}, []
    for _ in range(cfg.updates_per_batch if signal else 1):
        logp = token_logprobs(model, batch.ids, batch.attention, batch.mask)
        if first_logp is None:
            first_logp = logp.detach()
            if trainer_logprobs is not None:
                trainer_logprobs.extend(row[:len(s.ids)].tolist() for row, s in zip(first_logp, seqs))
        loss, step_metrics = grpo_loss(logp, batch, normalizer=normalizer, clip_low=cfg.clip_low,
                                       clip_high=cfg.clip_high, aggregation=cfg.aggregation, kl_coef=cfg.kl_coef,
                                       ref_logp=ref_logp, tis_cap=cfg.tis_cap, trainer_old=first_logp)
        if not torch.isfinite(loss):
            raise RunError(f"the loss is {float(loss)} (NaN or infinite): not stepping the optimiser")
        # train/serve mismatch is a property of the weights the server sampled from: the first update's
        metrics = metrics or step_metrics
        metrics["clip_fraction"] = step_metrics["clip_fraction"]  # the last update's: how far μ updates went
        losses.append(float(loss.detach()))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        world.reduce_grads(model)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        if signal:
            for group in optimizer.param_groups:  # linear warm-up (Adam's first steps are ~lr per weight)
                group["lr"] = cfg.lr * min(1.0, step / max(cfg.warmup_steps, 1))
            optimizer.step()
    model.eval()
    tokens = world.sum(metrics["tokens"])
    out = {"loss": world.sum(losses[0]), "grad_norm": float(grad_norm),
           "lr": optimizer.param_groups[0]["lr"] if signal else 0.0}
    for k in ("clip_fraction", "kl_ref", "token_mult_prob_error", "mismatch_k3"):
        out[k] = world.sum(metrics[k] * metrics["tokens"]) / max(tokens, 1.0)  # token-weighted over ranks
    return out


# -- refit: the server samples from the trainer's weights, proven on a fixed sequence (R8) -----------------
def refit(model, urls: list[str], folder: Path, http: httpx.Client, probe_ids: list[int],
          tolerance: float) -> tuple[float, int | None]:
    """(seconds, the weight version the server reported after the reload)."""
    start = time.perf_counter()
    tmp = folder.with_name(folder.name + ".tmp")
    try:
        model.save_pretrained(tmp, safe_serialization=True)
    except checkpoint.WRITE_ERRORS as exc:
        raise RunError(f"refit: the weights could not be written to {tmp} ({str(exc).splitlines()[0]})") from exc
    if folder.exists():
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
    tmp.rename(folder)
    with torch.no_grad():
        ids = torch.tensor([probe_ids])
        mine = token_logprobs(model, ids, torch.ones_like(ids))[0, 1:].tolist()
    version = None
    for url in urls:
        try:
            version = _probe(http, url, folder, probe_ids, mine, tolerance)
        except httpx.HTTPError as exc:
            raise RunError(f"refit: the server at {url} is not answering ({type(exc).__name__}: {exc})") from exc
    return time.perf_counter() - start, version


def _probe(http: httpx.Client, url: str, folder: Path, probe_ids: list[int], mine: list[float],
           tolerance: float) -> int | None:
    """Reload ``url`` from ``folder``, check it serves the trainer's log probs on ``probe_ids`` (R8); its version."""
    r = http.post(url + "/weights/reload", json={"path": str(folder)})
    if r.status_code != 200:
        raise RunError(f"refit: {url}/weights/reload answered HTTP {r.status_code}: {r.text[:200]}")
    version = r.json().get("weight_version")
    # the reload resets the prefix cache; the probe then rescores a fixed sequence (R8)
    r = http.post(url + "/v1/completions", json={"model": servers.MODEL_NAME, "prompt": probe_ids,
                                                 "max_tokens": 0, "prompt_logprobs": 0})
    if r.status_code != 200:
        raise RunError(f"refit probe: {url}/v1/completions answered HTTP {r.status_code}: {r.text[:200]}")
    served = [next(iter(e.values()))["logprob"] for e in r.json()["choices"][0]["prompt_logprobs"][1:]]
    worst = max(abs(a - b) for a, b in zip(served, mine))
    if not worst <= tolerance:
        raise RunError(f"refit: {url} serves log probs {worst:.2e} away from the trainer's after the reload "
                       f"(tolerance {tolerance:g}): the weights did not reach the server (R8)")
    return version


# -- the loop ---------------------------------------------------------------------------------------------
def policy_dir(cfg: Config) -> Path:
    name = cfg.policy or f"warm-{cfg.task}"
    path = Path(name)
    if path.is_dir():
        return path
    try:
        return fixture_path(name)
    except KeyError as exc:
        raise RunError(f"policy {name!r} is neither a model folder nor a fixture name") from exc


def _render(tokenizer):
    """The plain template render of a chat body (no bundles): what a server without corrections would serve."""
    def render(messages, tools):
        plain = [{k: v for k, v in m.items() if k not in ("prompt_token_ids", "generation_token_ids",
                                                          "generation_log_probs")} for m in messages]
        text = tokenizer.apply_chat_template(plain, tools=tools, add_generation_prompt=True, tokenize=False)
        return tokenizer.encode(text, add_special_tokens=False)
    return render


def _seed(cfg: Config, step: int, index: int) -> int:
    return (cfg.seed * 1_000_003 + step) * 4096 + index


async def _validate(agents, rows, cfg: Config, step: int) -> float:
    """Mean reward over the validation rows at the training sampling; a lost rollout ends the run (a silent 0
    would bend the curve the loop checks compare against)."""
    jobs = [(row, i, s, _seed(cfg, step, (1 << 20) + i * cfg.val_samples + s))
            for i, row in enumerate(rows) for s in range(cfg.val_samples)]
    done = await run_rollouts(agents, jobs, concurrency=cfg.concurrency)
    lost = [r.error for r in done if r.error]
    if lost:
        raise RunError(f"validation at step {step}: {len(lost)} of {len(done)} rollouts failed; the first: {lost[0]}")
    return sum(r.reward for r in done) / len(done)


def train(cfg: Config, out: Path, *, resume: bool = False, model_urls: list[str] | None = None,
          env_url: str | None = None, progress=None, write_dumps: bool = True) -> list[dict]:
    """Run (or resume) the loop in ``out``; ``write_dumps``: rollouts.jsonl and train_batches.jsonl for the
    loop checks (docs/loop-dumps.md) beside metrics.jsonl."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the loop has its own progress display; checkpoints write every K steps
    if cfg.task not in tasks.TASKS:
        raise RunError(f"unknown task {cfg.task!r}; known: {', '.join(tasks.TASKS)}")
    world = init_world()
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / "metrics.jsonl"
    if not resume and (out / checkpoint.CKPT).exists():
        raise RunError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    start_dir = policy_dir(cfg)
    torch.manual_seed(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(start_dir)
    model = AutoModelForCausalLM.from_pretrained(start_dir, dtype=torch.float32).eval()
    ref_model = AutoModelForCausalLM.from_pretrained(start_dir, dtype=torch.float32).eval() if cfg.kl_coef else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = random.Random(cfg.seed)
    first = checkpoint.load(out, model, optimizer, rng) + 1 if resume else 1
    if world.main:
        (out / "config.json").write_text(cfg.to_json())
        for name in ("metrics.jsonl", dumps.ROLLOUTS, dumps.BATCHES):
            checkpoint.truncate_log(out / name, first - 1)
    train_rows, val_rows = tasks.rows(cfg.task, "train")[:cfg.train_rows or None], tasks.rows(cfg.task, "validation")
    probe = _probe_ids(tokenizer, val_rows[0])
    log: list[dict] = []
    with ExitStack() as stack:
        if world.main and model_urls is None:
            model_urls, env_url = servers.start(stack, start_dir, task=cfg.task, engine=cfg.engine,
                                                endpoints=cfg.endpoints, logs=out / "logs")
        model_urls, env_url = world.broadcast((model_urls, env_url))
        loop = asyncio.new_event_loop()
        stack.callback(loop.close)
        ahttp = loop.run_until_complete(_open_session(cfg.concurrency))
        stack.callback(lambda: loop.run_until_complete(ahttp.close()))
        http = stack.enter_context(httpx.Client(timeout=120))
        agents = [Agent(ahttp, url, env_url, model=servers.MODEL_NAME, max_tokens=cfg.max_tokens,
                        max_turns=cfg.max_turns, temperature=cfg.temperature, top_p=cfg.top_p,
                        render=_render(tokenizer)) for url in model_urls]

        # the startup heap (torch, transformers, the models) out of the collector's reach, as the server's: a full
        # collection walking it mid-rollout stalls every request the loop has in flight
        gc.collect()
        gc.freeze()
        stack.callback(gc.unfreeze)

        def sync() -> tuple[float, int | None]:
            """Rank 0 refits every server with the trainer's weights; every rank learns the served version."""
            seconds, version = refit(model, model_urls, out / "refit", http, probe, cfg.refit_tolerance) \
                if world.main else (0.0, None)
            return seconds, world.broadcast(version)

        if first == 1 and cfg.val_every:  # the starting policy's validation reward: step 0 of the curve
            sync()
            if world.main:
                start_val = loop.run_until_complete(_validate(agents, val_rows, cfg, 0))
                with metrics_path.open("a") as f:
                    f.write(json.dumps({"step": 0, "val_reward": round(start_val, 6)}) + "\n")
                log.append({"step": 0, "val_reward": round(start_val, 6)})
        for step in range(first, cfg.steps + 1):
            t0 = time.perf_counter()
            # 1. refit first: the rollouts of this step sample from the weights this step trains (R8)
            refit_s, version = sync()
            # 2. rollouts: the same row draw on every rank, each rank takes its share of the rows
            picked = [rng.randrange(len(train_rows)) for _ in range(cfg.rows_per_step)]
            mine = picked[world.rank::world.size]
            # sample = k·G + g: completion g of this rank's k-th row (its group, even if a row is drawn twice)
            jobs = [(train_rows[i], i, k * cfg.group_size + g, _seed(cfg, step, world.rank * 65536 + k * cfg.group_size + g))
                    for k, i in enumerate(mine) for g in range(cfg.group_size)]
            t1 = time.perf_counter()
            rollouts = loop.run_until_complete(run_rollouts(agents, jobs, concurrency=cfg.concurrency))
            rollout_s = time.perf_counter() - t1
            # 3. sequences from served ids only; a broken rollout is counted and left out, never repaired
            seqs, keep, problems = [], [], {"rollout_errors": 0, "contiguity_breaks": 0, "nan_logprobs": 0}
            excluded: dict[int, str] = {}  # sample -> why it is not trained on (written in the rollouts dump)
            for r in rollouts:
                if r.error:
                    problems["rollout_errors"] += 1
                    excluded[r.sample] = "rollout failed"
                    continue
                try:
                    seq = build_sequence(r.calls)
                except ContiguityError as exc:
                    problems["contiguity_breaks"] += 1
                    excluded[r.sample] = f"contiguity break: {exc}"
                    continue
                if has_nan(seq):
                    problems["nan_logprobs"] += 1
                    excluded[r.sample] = "a served log prob is not finite (R12)"
                    continue
                seqs.append(seq)
                keep.append(r)
            if not keep and all(r.error for r in rollouts):
                raise RunError(f"step {step}: every rollout failed; the first: {rollouts[0].error}")
            # 4. advantages within each group (a group = one row of this step), over the kept rollouts
            adv = group_advantages([r.reward for r in keep], [r.sample // cfg.group_size for r in keep],
                                   estimator=cfg.advantage)
            t2 = time.perf_counter()
            trainer_logps: list = []
            stats = train_step(model, optimizer, seqs, adv, cfg, world, pad_id=tokenizer.pad_token_id, step=step,
                               ref_model=ref_model, trainer_logprobs=trainer_logps) if seqs else {}
            train_s = time.perf_counter() - t2
            if write_dumps:
                lines = ([dumps.rollout_line(step, world.rank, r, cfg.group_size, excluded.get(r.sample), version)
                          for r in rollouts],
                         [dumps.train_line(step, world.rank, r, s, lp, a, version)
                          for r, s, lp, a in zip(keep, seqs, trainer_logps, adv)])
                if world.main:
                    for part in world.gather(lines):
                        dumps.append(out / dumps.ROLLOUTS, part[0])
                        dumps.append(out / dumps.BATCHES, part[1])
                else:
                    world.gather(lines)
            record = _record(step, world.gather([_summary(r, cfg.group_size, world.rank) for r in rollouts]), world,
                             problems, stats,
                             refit_s=refit_s, rollout_s=rollout_s, train_s=train_s)
            if cfg.val_every and (step % cfg.val_every == 0 or step == cfg.steps):
                sync()
                record["val_reward"] = round(loop.run_until_complete(_validate(agents, val_rows, cfg, step)), 6) \
                    if world.main else None
            record["step_s"] = round(time.perf_counter() - t0, 3)
            if world.main:
                with metrics_path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                    checkpoint.save(out, step, model, optimizer, rng)
                if progress is not None:
                    progress(record)
            log.append(record)
    return log


async def _open_session(concurrency: int):
    return session(concurrency)  # aiohttp binds a session to the running loop: open it inside the loop


def _probe_ids(tokenizer, row: dict) -> list[int]:
    text = tokenizer.apply_chat_template(row["responses_create_params"]["input"], add_generation_prompt=True,
                                         tokenize=False) + tasks.ANSWER_FORMAT.format(row["expected_answer"])
    return tokenizer.encode(text, add_special_tokens=False)


def _summary(r: Rollout, group_size: int, rank: int) -> dict:
    return {"reward": r.reward, "components": r.components, "error": r.error, "truncated": r.truncated,
            "calls": len(r.calls), "spliced": r.spliced_calls, "group": (rank, r.sample // group_size),
            "generated": sum(len(c.generation_ids) for c in r.calls)}


def _record(step: int, gathered: list[list[dict]], world: World, problems: dict, stats: dict, **times) -> dict:
    rs = [s for part in gathered for s in part]
    ok = [s for s in rs if not s["error"]]
    rewards = [s["reward"] for s in ok]
    mean = sum(rewards) / len(rewards) if rewards else 0.0
    comps = sorted({k for s in ok for k in s["components"]})
    return {
        "step": step,
        "reward_mean": round(mean, 6),
        "reward_std": round(math.sqrt(sum((r - mean) ** 2 for r in rewards) / len(rewards)), 6) if rewards else 0.0,
        **{f"reward_{k}": round(sum(s["components"].get(k, 0.0) for s in ok) / max(len(ok), 1), 6) for k in comps},
        "zero_std_groups": round(zero_std_fraction(rewards, [tuple(s["group"]) for s in ok]), 4),
        "response_tokens": round(sum(s["generated"] for s in ok) / max(len(ok), 1), 2),
        "truncated": sum(s["truncated"] for s in ok),
        "calls": sum(s["calls"] for s in rs),
        "spliced_calls": sum(s["spliced"] for s in rs),
        **{k: int(world.sum(v)) for k, v in problems.items()},
        **{k: round(v, 6) for k, v in stats.items()},
        **{k: round(v, 3) for k, v in times.items()},
    }
