"""Checks are small coroutines registered by id; :func:`run_check` awaits them with the id bound to the context.

A check receives a :class:`CheckContext` (the session's context with its own id and tier bound), so it raises
``ctx.fail(verdict, ...)`` without repeating its id; endpoint trouble becomes that check's failure.
"""
from __future__ import annotations

import inspect
from typing import Awaitable, Callable

from ..core import CATALOGUE, CheckFailure, EndpointError, EndpointStopped
from ._context import CheckContext, Context

CheckFn = Callable[[CheckContext], Awaitable[None]]
CHECKS: dict[str, list[tuple[str, CheckFn]]] = {}


def check(check_id: str, variant: str = "") -> Callable[[CheckFn], CheckFn]:
    """Register coroutine ``fn`` as (one variant of) catalogue check ``check_id``; raises if the id is unknown."""
    if check_id not in CATALOGUE:
        raise KeyError(f"unknown check id {check_id!r}")

    def deco(fn: CheckFn) -> CheckFn:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"check {check_id} {fn.__name__}: checks are coroutines (async def)")
        CHECKS.setdefault(check_id, []).append((variant or fn.__name__, fn))
        return fn
    return deco


async def arun_check(ctx: Context, check_id: str, variant: str | None = None) -> None:
    """Await one registered check (all its variants unless ``variant`` names one)."""
    bound = ctx.bind(check_id)
    for name, fn in CHECKS[check_id]:
        if variant is not None and name != variant:
            continue
        client = ctx.client
        asked = client.stats.attempts
        try:
            await fn(bound)
        except EndpointStopped:
            raise  # not this check's finding: the run stopped driving the endpoint (graded error, exit 2)
        except EndpointError as exc:
            _stopped(client, asked)
            raise bound.endpoint_failure(exc) from None
        except CheckFailure:
            _stopped(client, asked)
            raise
        _stopped(client, asked)


def _stopped(client, asked: int) -> None:
    """A check that asked the endpoint for something after the client stopped driving it has no verdict of its
    own, whatever it made of the refusal (several checks accept an error as a right answer): an error, naming why."""
    if client.stopped is not None and client.stats.attempts > asked:
        raise EndpointStopped(f"{client.api}: {client.stopped}") from None


def run_check(ctx: Context, check_id: str, variant: str | None = None) -> None:
    """:func:`arun_check` on the session's event loop, for the synchronous pytest item."""
    ctx.run(arun_check(ctx, check_id, variant))
