"""A vLLM general plugin: how long vLLM's shared-memory queue readers busy-wait after their last read.

vLLM's engine core and its CPU worker talk through shared-memory queues whose readers spin (``sched_yield``)
for a fixed second after each read before they sleep on a socket (``SpinCondition`` in vLLM's
``shm_broadcast``; 1 s and no setting in vllm 0.32). Under steady load that saves a wake-up per scheduler step;
on a 2-core machine where the GRPO trainer runs beside the server, the two spinning readers take the cores the
trainer's update needs for the second after every rollout batch (measured: the reference loop's update took a
third longer, its step a fifth longer).

vLLM loads ``vllm.general_plugins`` entry points in every process it starts (the engine core and each worker)
before it builds those queues; ``register`` makes every reader created afterwards spin for
``$GYM_CONFORMANCE_VLLM_IDLE_SPIN_S`` seconds. It does nothing when the variable is unset, so a stock vLLM server
started from the same environment keeps vLLM's own behaviour. The reference server sets it on CPU
(``vllm_engine.IDLE_SPIN_DEFAULT_S``).
"""
from __future__ import annotations

import os

ENV = "GYM_CONFORMANCE_VLLM_IDLE_SPIN_S"


def idle_spin_seconds(environ=os.environ) -> float | None:
    """The configured busy-wait in seconds, ``None`` when unset; a value that is not a number >= 0 is an error."""
    raw = environ.get(ENV)
    if raw is None or raw == "":
        return None
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"{ENV} must be a number of seconds (got {raw!r})") from None
    if not seconds >= 0:
        raise ValueError(f"{ENV} must be 0 or more seconds (got {raw!r})")
    return seconds


def register() -> None:
    """Entry point (``vllm.general_plugins``); vLLM may call it more than once per process."""
    seconds = idle_spin_seconds()
    if seconds is None:
        return
    from vllm.distributed.device_communicators import shm_broadcast

    cls = shm_broadcast.SpinCondition
    original = getattr(cls.__init__, "_vllm_init", cls.__init__)

    def __init__(self, is_reader, context, notify_address, busy_loop_s: float = 1, **kwargs):
        original(self, is_reader, context, notify_address, seconds if is_reader else busy_loop_s, **kwargs)

    __init__._vllm_init = original
    cls.__init__ = __init__
