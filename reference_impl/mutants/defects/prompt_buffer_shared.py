"""Reuses one prompt buffer for every request: under concurrency a session is served another session's prompt.

A per-request allocation "optimised" into a buffer kept on the server: each request plans its prompt into the same
list, then awaits the engine. One session at a time never notices; with several in flight the buffer holds whichever
prompt was planned last, so the engine and the response's ``prompt_token_ids`` get another session's history. Only
load shows it (R10: continuity breaks, a first call served a prompt other than its own).
"""
from __future__ import annotations

from reference_impl.server.service import Service

REPRODUCES = "shared per-request state in an async server: sessions mixed under concurrent load (R10)"


class Mutant(Service):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.buffer: list[int] = []

    def plan_prompt(self, req):
        self.buffer[:] = super().plan_prompt(req)  # the defect: one list for every request in flight
        return self.buffer
