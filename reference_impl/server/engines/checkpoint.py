"""Vetting a checkpoint before a reload touches the served weights: all or nothing (contract R8).

A trainer that is still writing leaves a truncated file; a wrong run directory holds another model's tensors. Either
must be refused with a 400 naming the problem, and the weights already served must stay as they were. Both engines
read the safetensors headers first (no tensor data: a header is a few KB) and compare names and shapes with the
served model's own; only a checkpoint that passes is handed to the engine's loader.
"""
from __future__ import annotations

from pathlib import Path

from .base import EngineError


def checkpoint_files(path: str | Path) -> list[Path]:
    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        raise EngineError(f"no *.safetensors files in {path}", status=400, param="path")
    return files


def tensor_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Name → shape of every tensor in the directory's safetensors files, from their headers (safetensors also
    checks that the data covers them); a file that is not a complete safetensors file (truncated, garbage) is the
    caller's checkpoint: a 400 naming it."""
    from safetensors import safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    for f in checkpoint_files(path):
        try:
            with safe_open(str(f), framework="pt") as handle:
                for name in handle.keys():
                    shapes[name] = tuple(handle.get_slice(name).get_shape())
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types for a bad file
            raise EngineError(f"{f.name} is not a readable safetensors file: {exc}".splitlines()[0][:300],
                              status=400, param="path") from exc
    return shapes


def check_against(shapes: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]]) -> None:
    """Every tensor must be one the served model has, with its shape (a subset is fine: a partial refit)."""
    unknown = [k for k in shapes if k not in expected]
    if unknown:
        raise EngineError(f"checkpoint has unknown tensors: {unknown[:3]}", status=400, param="path")
    misshapen = [f"{k} {shapes[k]} (the model's: {expected[k]})" for k in shapes if shapes[k] != expected[k]]
    if misshapen:
        raise EngineError(f"checkpoint tensors have the wrong shape: {', '.join(misshapen[:3])}", status=400,
                          param="path")
