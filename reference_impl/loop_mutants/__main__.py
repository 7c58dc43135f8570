"""Train the rows of a task's loop zoo (its reference and its mutants) into one folder, on shared servers.

    python -m reference_impl.loop_mutants --task lookup --out reports/selftest-loop/runs [--only NAME ...]
    # -> runs/reference-lookup/{rollouts,train_batches,metrics}.jsonl, runs/<mutant>/..., one row after another

One reference-server process and one environment serve every row (each row's first refit loads its own
starting weights), unless ``--model-url`` / ``--env-url`` name servers that are already running.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

from . import RECIPES, rows, train_row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference_impl.loop_mutants", description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(RECIPES), required=True)
    parser.add_argument("--out", type=Path, required=True, help="one sub-folder per row")
    parser.add_argument("--only", action="append", metavar="NAME", help="train only these rows (repeatable)")
    parser.add_argument("--engine", choices=["vllm", "hf"], default="vllm", help="engine of the started server")
    parser.add_argument("--model-url", help="a running reference server serving the task's warm-start policy")
    parser.add_argument("--env-url", help="the task's running environment")
    args = parser.parse_args(argv)
    names = [n for n in rows(args.task) if not args.only or n in args.only]
    unknown = sorted(set(args.only or []) - set(rows(args.task)))
    if unknown:
        print(f"{parser.prog}: error: no row {unknown[0]!r} in the {args.task} zoo; rows: {', '.join(rows(args.task))}",
              file=sys.stderr)
        return 2
    if bool(args.model_url) != bool(args.env_url):
        print(f"{parser.prog}: error: --model-url and --env-url go together", file=sys.stderr)
        return 2
    from reference_impl.grpo import servers
    from reference_impl.grpo.train import RunError, policy_dir

    from . import config

    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    with contextlib.ExitStack() as stack:
        if args.model_url:
            urls, env = [args.model_url], args.env_url
        else:
            urls, env = servers.start(stack, policy_dir(config(args.task)), task=args.task, engine=args.engine,
                                      endpoints=1, logs=args.out / "logs")
        for name in names:
            start = time.monotonic()
            try:
                log = train_row(name, args.task, args.out / name, model_urls=urls, env_url=env)
            except (RunError, ValueError, OSError) as exc:  # the row is reported; its missing dumps show in the matrix
                failed += 1
                print(f"loop zoo: {name}: error: {' '.join(str(exc).split())}", flush=True)
                continue
            last = log[-1] if log else {}
            print(f"loop zoo: {name}: {len(log)} log lines in {time.monotonic() - start:.1f}s; last reward "
                  f"{last.get('reward_mean', float('nan')):.3f}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
