"""Loop mutants: the reference GRPO loop with exactly one real-world training-loop defect each.

The endpoint zoo (``reference_impl/mutants``) proves the checks of what a framework *serves*; this one proves
the loop checks, which judge what a framework *trains on* from its dumps (docs/loop-dumps.md). Each module in
``defects/`` is one mutant, named after the bug it reproduces, and defines:

- ``KILLED_BY``: the check whose rule the bug breaks (the expectation table lists every check it fails);
- ``TASK``: the benchmark task it runs on (``lookup``: multi-turn tool calls through the server's splice;
  ``arith``: long enough for a reward curve);
- ``patches(run) -> dict``: replacements for names in ``reference_impl.grpo.train`` (``train_step``,
  ``build_sequence``, ``run_rollouts``, ``refit``, ``Agent``, ...), applied only while that mutant trains.
  ``run`` gives the mutant the run's config and tokenizer.

Every row (the reference of a task and its mutants) trains with the same recipe, seed and servers, so the
rollouts differ only where the defect makes them differ, and the loop writes its dumps as usual: what a
mutant's dumps show is what its loss used. ``python -m reference_impl.loop_mutants`` trains the rows;
``gym-conformance selftest --loop`` judges them against ``expectations.json``.
"""
from __future__ import annotations

import contextlib
import importlib
import pkgutil
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

from . import defects

# The recipes every row of a task trains with. lookup: 3 steps of 4 rows x 4 samples from warm-lookup-rough, the
# lookup policy that samples a non-canonical token split often enough for retokenized-training-input to show
# within 3 steps (fixtures/warm_start.py). Its tool calls take 25-28 tokens, so a 27-token budget leaves most
# rollouts multi-turn (tool output, splices) and cuts a few (truncations); warm-up 1 and lr 1e-3 so that one update moves the served log probs measurably (a missed refit
# shows from the next step on). arith: the bounded curve of the training test (30 steps on 4 rows) that a loop
# with a broken update cannot climb (B4 judges its training reward). Neither validates: on 4 training rows at
# that learning rate the policy fits those rows and the validation reward falls (0.33 -> 0.23 measured), and the
# rows are judged on their dumps and training curves.
RECIPES: dict[str, dict[str, Any]] = {
    "lookup": {"task": "lookup", "policy": "warm-lookup-rough", "steps": 3, "seed": 3, "rows_per_step": 4,
               "group_size": 4, "max_tokens": 27, "lr": 1e-3, "warmup_steps": 1, "val_every": 0, "checkpoint_every": 3},
    "arith": {"task": "arith", "steps": 30, "seed": 0, "rows_per_step": 4, "group_size": 16, "train_rows": 4,
              "lr": 1e-3, "val_every": 0, "checkpoint_every": 30},
}


def reference_name(task: str) -> str:
    return f"reference-{task}"


@dataclass(frozen=True)
class LoopMutant:
    name: str
    summary: str
    killed_by: str
    task: str
    module: ModuleType


@dataclass
class Run:
    """What a mutant may read while it builds its patches."""
    cfg: Any           # reference_impl.grpo.config.Config
    tokenizer: Any     # the policy's tokenizer (transformers)
    loop: ModuleType   # reference_impl.grpo.train, whose names the patches replace


def discover() -> dict[str, LoopMutant]:
    """Every defect module, by mutant name (the module name with ``-`` for ``_``)."""
    found = {}
    for info in sorted(pkgutil.iter_modules(defects.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{defects.__name__}.{info.name}")
        name = info.name.replace("_", "-")
        summary = " ".join((module.__doc__ or "").strip().split("\n\n")[0].split())  # the first paragraph
        found[name] = LoopMutant(name, summary, module.KILLED_BY,
                                 module.TASK, module)
    return found


def rows(task: str) -> list[str]:
    """The rows of a task's zoo: its reference, then its mutants."""
    return [reference_name(task)] + [m.name for m in discover().values() if m.task == task]


def config(task: str):
    from reference_impl.grpo.config import Config

    return replace(Config.for_task(task), **RECIPES[task])


def train_row(name: str, task: str, out: Path, *, model_urls: list[str], env_url: str) -> list[dict]:
    """Train one row of ``task``'s zoo into ``out`` (emptied first) on running servers; its metrics log."""
    from transformers import AutoTokenizer

    from reference_impl.grpo import train as loop

    cfg = config(task)
    if out.exists():
        shutil.rmtree(out)
    patches: dict[str, Any] = {}
    if name != reference_name(task):
        mutant = discover()[name]
        if mutant.task != task:
            raise ValueError(f"mutant {name!r} runs on task {mutant.task!r}, not {task!r}")
        tokenizer = AutoTokenizer.from_pretrained(loop.policy_dir(cfg))
        patches = mutant.module.patches(Run(cfg, tokenizer, loop))
        unknown = sorted(set(patches) - set(vars(loop)))
        if unknown:  # a patch of a name the loop does not look up would silently change nothing
            raise ValueError(f"mutant {name!r} patches {unknown[0]!r}, which reference_impl.grpo.train does not have")
    with mock.patch.multiple(loop, **patches) if patches else contextlib.nullcontext():
        return loop.train(cfg, out, model_urls=model_urls, env_url=env_url)

