"""Serves ids and log probs from the previous checkpoint: ``/weights/reload`` acknowledges but loads nothing.

A refit that silently missed this server (a reload RPC that skipped a rank, tied embeddings left stale,
docs/cpu-environment.md trap 2): the tokenizer and template are current, the version number goes up, and every
route -- chat, rescoring through ``/v1/completions`` -- is self-consistent, so only rescoring against the
trainer's weights on disk shows it. The "previous checkpoint" is the served model with every weight
tensor nudged by deterministic noise, written once to ``<fixture cache>/mutants/stale-weights-<hash>``.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from reference_impl.server.engines.base import EngineError
from reference_impl.server.engines.hf import HFEngine
from reference_impl.server.service import Service

REPRODUCES = "logprobs from stale weights after a reload (R8, M24 against local weights)"
NOISE = 0.3  # x each tensor's std; vs the current weights: mult. prob error ~1.15 (M24 max 1.05), k3 ~1e-2 (max 1e-3)
SEED = 5


def previous_checkpoint(model_dir: Path) -> Path:
    """The perturbed copy of ``model_dir``'s weights (config and generation config alongside), built once."""
    import torch
    from safetensors.torch import load_file, save_file

    from fixtures import cache_root

    files = sorted(model_dir.glob("*.safetensors"))
    h = hashlib.sha256(f"{NOISE}:{SEED}".encode())
    for f in files:
        h.update(f.read_bytes())
    dest = cache_root() / "mutants" / f"stale-weights-{h.hexdigest()[:16]}"
    if dest.is_dir():
        return dest
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED)
    for f in files:
        state = load_file(f)
        for name in sorted(state):
            t = state[name]
            if t.is_floating_point() and t.numel() > 1:
                state[name] = t + NOISE * t.float().std() * torch.randn(t.shape, generator=gen, dtype=t.dtype)
        save_file(state, tmp / f.name)
    for extra in ("config.json", "generation_config.json"):
        if (model_dir / extra).is_file():
            shutil.copy(model_dir / extra, tmp / extra)
    try:
        tmp.rename(dest)
    except OSError:  # another process built it first
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


class StaleEngine(HFEngine):
    name = "hf-stale"

    def __init__(self, reference: Service):
        self.reference_engine = reference.engine
        super().__init__(previous_checkpoint(Path(reference.model_path)),
                         eos_token_id=reference.tokenizer.eos_token_id, tokenizer=reference.tokenizer)

    async def start(self) -> None:
        # the reference engine has started: serve the same context length it does
        self.max_model_len = self.reference_engine.max_model_len or self.max_model_len

    async def reload_weights(self, path: str) -> int:
        if not list(Path(path).glob("*.safetensors")):
            raise EngineError(f"no *.safetensors files in {path}", status=400, param="path")
        self.weight_version += 1  # the defect: acknowledged, nothing loaded
        return self.weight_version


def make_engine(reference: Service) -> StaleEngine:
    return StaleEngine(reference)


class Mutant(Service):
    """Nothing to override: the defect is the engine (``make_engine``)."""
