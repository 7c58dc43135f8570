"""Checks are small functions registered by id; :func:`run_check` turns endpoint trouble into a failure."""
from __future__ import annotations

from typing import Callable

from ..core import CATALOGUE, EndpointError
from ._context import Context

CheckFn = Callable[[Context], None]
CHECKS: dict[str, list[tuple[str, CheckFn]]] = {}


def check(check_id: str, variant: str = "") -> Callable[[CheckFn], CheckFn]:
    """Register ``fn`` as (one variant of) catalogue check ``check_id``; raises if the id is unknown."""
    if check_id not in CATALOGUE:
        raise KeyError(f"unknown check id {check_id!r}")

    def deco(fn: CheckFn) -> CheckFn:
        CHECKS.setdefault(check_id, []).append((variant or fn.__name__, fn))
        return fn
    return deco


def run_check(ctx: Context, check_id: str, variant: str | None = None) -> None:
    """Run one registered check (all its variants unless ``variant`` names one)."""
    for name, fn in CHECKS[check_id]:
        if variant is not None and name != variant:
            continue
        try:
            fn(ctx)
        except EndpointError as exc:
            raise ctx.endpoint_failure(check_id, exc) from None
