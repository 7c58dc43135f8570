"""Checkpoints written atomically: a run folder is always either at the previous checkpoint or the new one.

``ckpt/`` holds the policy (safetensors), the optimiser state, the step and every RNG the loop draws from.
A new checkpoint is written to ``ckpt.tmp-<pid>/`` and renamed over the old one; a crash (``kill -9``, a full
disk) mid-write leaves the previous checkpoint intact, and the half-written folder is removed on resume.
The metrics log is cut back to the checkpoint's step on resume, so a resumed run's log equals an
uninterrupted run's.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError

CKPT = "ckpt"
# What a failed write raises: the OS (OSError), safetensors (its own error class, e.g. "File too large") and
# torch.save (RuntimeError from its zip writer).
WRITE_ERRORS = (OSError, SafetensorError, RuntimeError)


def save(run: Path, step: int, model, optimizer, rng: random.Random) -> None:
    tmp = run / f"{CKPT}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        torch.save({"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()}, tmp / "trainer.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step, "rng": rng.getstate()}))
        for f in tmp.iterdir():  # on disk before the rename makes them the checkpoint
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        old = run / f"{CKPT}.old-{os.getpid()}"
        if (run / CKPT).exists():
            (run / CKPT).rename(old)
        tmp.rename(run / CKPT)
        shutil.rmtree(old, ignore_errors=True)
    except WRITE_ERRORS as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise OSError(f"checkpoint at step {step} not written ({reason}); the previous one is kept") from exc


def load(run: Path, model, optimizer, rng: random.Random) -> int:
    """Restore the last complete checkpoint into ``model``/``optimizer``/``rng``; returns its step (0: none)."""
    for stale in run.glob(f"{CKPT}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for old in run.glob(f"{CKPT}.old-*"):  # a crash between the two renames: the old folder is the checkpoint
        if not (run / CKPT).exists():
            old.rename(run / CKPT)
        else:
            shutil.rmtree(old, ignore_errors=True)
    ckpt = run / CKPT
    if not (ckpt / "state.json").is_file():
        return 0
    from safetensors.torch import load_file

    state = {}
    for f in sorted(ckpt.glob("*.safetensors")):
        state.update(load_file(f))
    model.load_state_dict(state, strict=False)
    trainer = torch.load(ckpt / "trainer.pt", weights_only=False)
    optimizer.load_state_dict(trainer["optimizer"])
    torch.set_rng_state(trainer["torch_rng"])
    meta = json.loads((ckpt / "state.json").read_text())
    rng.setstate(_tuples(meta["rng"]))
    return int(meta["step"])


def _tuples(x):
    return tuple(_tuples(i) for i in x) if isinstance(x, list) else x


def truncate_log(path: Path, step: int) -> None:
    """Keep the lines of steps <= ``step`` of a JSONL log (metrics, dumps): a resumed run re-logs what came after
    its checkpoint. Streamed, and replaced atomically: the dumps grow to many megabytes."""
    if not path.is_file():
        return
    tmp = path.with_suffix(".tmp")
    with path.open() as src, tmp.open("w") as dst:
        for line in src:
            if line.strip() and json.loads(line)["step"] <= step:
                dst.write(line if line.endswith("\n") else line + "\n")
    tmp.replace(path)
