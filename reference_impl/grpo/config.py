"""Every hyper-parameter of a run in one dataclass, written into the run folder as ``config.json``.

``--config FILE`` (TOML or JSON) overrides the defaults; command-line flags override the file. An unknown
key is an error that names it (a typo must not silently train with a default).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .advantages import ESTIMATORS


# Per-task departures from the defaults: a lookup rollout writes a JSON tool call, then the answer; arith validates
# 4 samples of each of its 64 validation rows (one sample each left a standard error of about 0.05 on the reward,
# as wide as the rise between two validations), lookup 2 (its rollouts take three calls).
TASK_DEFAULTS: dict[str, dict] = {"lookup": {"max_tokens": 48, "val_samples": 2}, "arith": {"val_samples": 4}}


@dataclass(frozen=True)
class Config:
    task: str = "arith"
    policy: str = ""              # model folder or fixture name; "" = the task's warm start (fixture warm-<task>)
    steps: int = 200
    seed: int = 0
    # rollouts
    rows_per_step: int = 8        # prompts per step
    train_rows: int = 0           # draw from the first N training rows only (0 = all); a short test overfits a few
    group_size: int = 8           # G completions per prompt (design-anchors.md, GRPO checklist item 1)
    max_tokens: int = 24          # per model call
    max_turns: int = 3            # model calls per rollout
    temperature: float = 1.0      # Gym's training mode samples at 1.0 (contract R5)
    top_p: float = 1.0
    endpoints: int = 1            # reference-server processes (DP ranks of the inference side)
    engine: str = "vllm"          # the reference server's engine: vllm | hf
    concurrency: int = 64         # rollouts in flight
    # objective
    advantage: str = "grpo"       # grpo | dr_grpo | loo
    aggregation: str = "token"    # token (DAPO) | sequence (original GRPO)
    clip_low: float = 0.2
    clip_high: float = 0.2
    kl_coef: float = 0.0          # k3 to the starting policy; 0 is TRL's default
    tis_cap: float | None = None  # truncated importance sampling cap (e.g. 2.0); None = off
    updates_per_batch: int = 1    # optimiser steps on each rollout batch (μ, GRPO Algorithm 1; TRL num_iterations)
    # optimiser (AdamW)
    lr: float = 3e-4              # arith: 1e-3 collapsed groups to one wrong answer (zero-std 0.1 -> 0.67 in 120 steps)
    warmup_steps: int = 10        # linear warm-up: Adam's first steps move every weight by ~lr whatever the signal
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    # bookkeeping
    val_every: int = 10           # validation reward at step 0, every K steps and at the end (0 = never)
    val_samples: int = 1          # samples per validation row
    checkpoint_every: int = 10
    torch_threads: int = 0        # trainer threads (0 = torch's default); see README "Speed" for the 2-core case
    refit_tolerance: float = 1e-3  # R8 probe: max |served − trainer| log prob on a fixed sequence

    @classmethod
    def for_task(cls, task: str) -> "Config":
        """The task's default recipe: the dataclass defaults with the task's own few (``TASK_DEFAULTS``)."""
        return cls(task=task, **TASK_DEFAULTS.get(task, {}))

    def check(self) -> None:
        """A ValueError naming the first field out of range (before any server starts)."""
        at_least = {"steps": 1, "train_rows": 0, "rows_per_step": 1, "group_size": 2, "max_tokens": 1, "max_turns": 1, "endpoints": 1,
                    "concurrency": 1, "updates_per_batch": 1, "val_every": 0, "val_samples": 1, "checkpoint_every": 1}
        for name, low in at_least.items():
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be at least {low} (got {getattr(self, name)})")
        choices = {"engine": ("vllm", "hf"), "advantage": ESTIMATORS, "aggregation": ("token", "sequence")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)} (got {getattr(self, name)!r})")
        if not self.lr > 0 or not 0 <= self.clip_low < 1 or not self.clip_high >= 0:
            raise ValueError(f"lr must be > 0 and the clip range within (0, 1) below / >= 0 above (got lr={self.lr}, "
                             f"clip_low={self.clip_low}, clip_high={self.clip_high})")

    def with_overrides(self, **kw) -> "Config":
        return dataclasses.replace(self, **{k: v for k, v in kw.items() if v is not None})

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @property
    def hash(self) -> str:
        """Identifies the recipe (everything but the step count), so curves of one recipe can be compared."""
        d = dataclasses.asdict(self)
        d.pop("steps")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def load(path: Path | str, base: Config | None = None) -> Config:
    path = Path(path)
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read config {path}: {exc}") from exc
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"config {path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    if base is None:  # the file's task picks the defaults its other fields override
        base = Config.for_task(data.get("task", Config.task))
    return dataclasses.replace(base, **data)
