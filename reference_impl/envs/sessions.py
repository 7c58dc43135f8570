"""Per-rollout state, found again through a cookie: the contract Gym's resources servers keep.

Gym's servers put a Starlette session cookie (named after the server) on their answers; the simple agent
takes the cookies of the ``/seed_session`` answer and sends them back with every tool call and with
``/verify``, so state seeded from a row is found again on the later calls of the same rollout, and only
there. What the agent relies on is observable: a ``Set-Cookie`` on the seed answer, carried back unchanged.
This store reproduces that with an opaque random id per session (the value the cookie carries) and the state
kept server-side, so nothing a client sends can forge or edit another session's state.

Two deliberate differences from Gym's middleware: every ``/seed_session`` starts a new session (a re-seed
with an old cookie must not inherit another row's table), and the store is bounded (least recently used
sessions go first) so a long training run cannot grow it without limit; an evicted session answers like
an unseeded one.
"""
from __future__ import annotations

import secrets
from collections import OrderedDict
from typing import Any

DEFAULT_CAPACITY = 100_000  # far above the rollouts a trainer keeps in flight at once


def cookie_name(task: str) -> str:
    """One cookie name per task, so an agent that talks to several environments never mixes their sessions."""
    return f"gym_conformance_{task}_session"


class SessionStore:
    """Session id -> state dict. Not locked: the routes run on one event loop and never await mid-update."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("a session store needs room for at least one session")
        self.capacity = capacity
        self._states: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def create(self, state: dict[str, Any]) -> str:
        """Store ``state`` under a new unguessable id and return the id (the cookie's value)."""
        session_id = secrets.token_urlsafe(24)  # cookie-safe characters only
        self._states[session_id] = state
        while len(self._states) > self.capacity:
            self._states.popitem(last=False)
        return session_id

    def get(self, session_id: str | None) -> dict[str, Any] | None:
        """The state of a live session (marking it recently used), or ``None``."""
        if session_id is None or session_id not in self._states:
            return None
        self._states.move_to_end(session_id)
        return self._states[session_id]

    def __len__(self) -> int:
        return len(self._states)
