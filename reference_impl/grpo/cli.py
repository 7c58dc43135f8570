"""``gym-conformance train --task NAME [--steps N --seed S --out DIR --config FILE] [--resume]``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import Config, load


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", help="benchmark task: arith or lookup (default: arith, or the config file's)")
    parser.add_argument("--steps", type=int, help="optimisation steps (default: 200, or the config file's)")
    parser.add_argument("--seed", type=int, help="seed of the row draw, the sampling and the initialisation")
    parser.add_argument("--out", type=Path, help="run folder: config.json, metrics.jsonl, rollouts.jsonl, "
                                                 "train_batches.jsonl, ckpt/, logs/ "
                                                 "(default: reports/train/<task>-seed<seed>)")
    parser.add_argument("--config", type=Path, help="TOML or JSON file of Config fields (reference_impl/grpo/config.py)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--engine", choices=["vllm", "hf"], help="the reference server's engine (default: vllm)")
    parser.add_argument("--endpoints", type=int, help="reference-server processes to spread rollouts over")
    parser.add_argument("--model-url", action="append", dest="model_urls", metavar="URL",
                        help="use this running reference server instead of starting one (repeat for DP ranks; "
                             "needs --env-url)")
    parser.add_argument("--env-url", help="use this running environment server instead of starting one")
    parser.add_argument("--no-dumps", dest="dumps", action="store_false",
                        help="do not write rollouts.jsonl and train_batches.jsonl (the loop checks' input)")


def _fail(message: str) -> int:
    print(f"gym-conformance train: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from fixtures.tasks import TASKS

    try:
        task_defaults = Config.for_task(args.task) if args.task else None
        cfg = load(args.config, task_defaults) if args.config else task_defaults or Config()
        cfg = cfg.with_overrides(task=args.task, steps=args.steps, seed=args.seed, engine=args.engine,
                                 endpoints=args.endpoints)
        if cfg.task not in TASKS:
            return _fail(f"unknown task {cfg.task!r}; known: {', '.join(TASKS)}")
        cfg.check()
    except (ValueError, TypeError) as exc:
        return _fail(str(exc))
    if bool(args.model_urls) != bool(args.env_url):
        return _fail("--model-url and --env-url go together")
    out = args.out or Path("reports/train") / f"{cfg.task}-seed{cfg.seed}"
    from .train import RunError, train  # torch and transformers: only once the arguments are known to be good

    try:
        with _Progress(cfg, quiet=args.quiet) as progress:
            log = train(cfg, out, resume=args.resume, model_urls=args.model_urls, env_url=args.env_url,
                        progress=progress, write_dumps=args.dumps)
    except (RunError, OSError) as exc:
        return _fail(" ".join(str(exc).split()))
    vals = [r["val_reward"] for r in log if r.get("val_reward") is not None]
    if vals:
        print(f"{cfg.task}: validation reward {vals[0]:.3f} -> {vals[-1]:.3f}; run folder {out}")
    return 0


class _Progress:
    """A live bar with the step's reward and seconds per step (rich); plain lines with --quiet."""

    def __init__(self, cfg: Config, *, quiet: bool):
        self.cfg, self.quiet = cfg, quiet

    def __enter__(self):
        if not self.quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn(f"[bold]{self.cfg.task}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[info]}"), TimeRemainingColumn())
            self.bar.__enter__()
            self.task = self.bar.add_task("train", total=self.cfg.steps, info="")
        return self

    def __call__(self, record: dict) -> None:
        val = f" val {record['val_reward']:.3f}" if record.get("val_reward") is not None else ""
        info = f"reward {record['reward_mean']:.3f}{val}  {record['step_s']:.2f} s/step"
        if self.quiet:
            if record.get("val_reward") is not None:
                print(f"step {record['step']}: {info}", flush=True)
        else:
            self.bar.update(self.task, completed=record["step"], info=info)

    def __exit__(self, *exc):
        if not self.quiet:
            self.bar.__exit__(*exc)
