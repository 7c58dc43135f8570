"""Reference reward curves: the reference GRPO loop on each benchmark task over several seeds, committed under
conformance/curves/ (the band the loop checks compare a framework's curve against) with a plot.

    .venv/bin/python benchmarks/bench_grpo_curves.py [--tasks arith lookup] [--seeds 0 1 2] [--steps 200]
                                                     [--out conformance/curves]

One reference server (vllm engine, the task's warm-start policy) and one environment server per task, shared
by the task's seeds (every run refits the server with its own weights before it samples). Each run is
``gym-conformance train`` with the task's default recipe (``Config.for_task``) and the seed; its run folder
goes to a temporary directory. Writes ``<task>.json`` (the recipe, its hash, the per-step training reward and
the validation rewards of every seed, wall times) and ``<task>.png``; prints a summary table for the README.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fixtures import fixture_path  # noqa: E402
from reference_impl.grpo import servers  # noqa: E402
from reference_impl.grpo.config import Config  # noqa: E402
from reference_impl.grpo.train import train  # noqa: E402

FORMAT = 1  # version of the curve file


def moving_average(xs: list[float], window: int) -> list[float]:
    """Trailing mean over the last ``window`` points (fewer at the start): the smoothing the plot draws."""
    out, total = [], 0.0
    for i, x in enumerate(xs):
        total += x - (xs[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def run_task(task: str, seeds: list[int], steps: int, work: Path) -> dict:
    cfg0 = Config.for_task(task).with_overrides(steps=steps)
    runs = {}
    with ExitStack() as stack:
        urls, env = servers.start(stack, fixture_path(f"warm-{task}"), task=task, engine=cfg0.engine, endpoints=1,
                                  logs=work / f"{task}-logs")
        for seed in seeds:
            cfg = cfg0.with_overrides(seed=seed)
            start = time.perf_counter()
            log = train(cfg, work / f"{task}-seed{seed}", model_urls=urls, env_url=env)
            wall = time.perf_counter() - start
            runs[str(seed)] = {
                "reward_mean": [r["reward_mean"] for r in log if "reward_mean" in r],
                "val_reward": {str(r["step"]): r["val_reward"] for r in log if r.get("val_reward") is not None},
                "wall_s": round(wall, 1),
                "step_s": round(sum(r["step_s"] for r in log if "step_s" in r) / steps, 3),
            }
            print(f"{task} seed {seed}: val {runs[str(seed)]['val_reward']['0']:.3f} -> "
                  f"{log[-1]['val_reward']:.3f} in {wall:.0f} s", flush=True)
    return {"format": FORMAT, "task": task, "steps": steps, "config": dataclasses.asdict(cfg0),
            "config_hash": cfg0.hash, "seeds": runs,
            "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}"}


@contextmanager
def reward_figure(path: Path, *, ylabel: str, title: str, top: float = 1.0):
    """Axes for reward-by-step lines; the figure is finished (grid, legend, range 0 to ``top``) and saved to
    ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    yield ax
    ax.set(xlabel="step", ylabel=ylabel, ylim=(0, top), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot(curve: dict, path: Path, window: int = 10) -> None:
    title = f"{curve['task']}: training reward ({window}-step mean), validation (dots)"
    highest = max(max(run["reward_mean"] + list(run["val_reward"].values())) for run in curve["seeds"].values())
    top = min(1.0, math.ceil(highest * 10 + 1) / 10)  # lookup's rewards stay under 0.3: do not squash them at 0
    with reward_figure(path, ylabel="reward", title=title, top=top) as ax:
        for seed, run in curve["seeds"].items():
            xs = list(range(1, len(run["reward_mean"]) + 1))
            line, = ax.plot(xs, moving_average(run["reward_mean"], window), lw=1.2, label=f"seed {seed} (train)")
            val = sorted((int(k), v) for k, v in run["val_reward"].items())
            ax.plot([s for s, _ in val], [v for _, v in val], "o--", ms=3, lw=0.8, color=line.get_color(), alpha=0.7)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["arith", "lookup"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("conformance/curves"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="grpo-curves-") as tmp:
        for task in args.tasks:
            curve = run_task(task, args.seeds, args.steps, Path(tmp))
            path = args.out / f"{task}.json"
            path.with_suffix(".json.tmp").write_text(json.dumps(curve, indent=1, sort_keys=True) + "\n")
            path.with_suffix(".json.tmp").replace(path)
            plot(curve, args.out / f"{task}.png")
            for seed, run in curve["seeds"].items():
                val = run["val_reward"]
                at = [val.get(str(s)) for s in (0, 50, 100, 150, args.steps)]
                rows.append((task, seed, *at, run["step_s"], run["wall_s"]))
    print("\n| task | seed | val@0 | val@50 | val@100 | val@150 | val@end | s/step | wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join("–" if x is None else f"{x:.3f}" if isinstance(x, float) and x < 1.5 else str(x)
                                for x in row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
