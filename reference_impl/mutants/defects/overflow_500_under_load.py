"""Answers HTTP 500 once more than 8 requests are in flight: a queue that overflows instead of waiting.

A server sized for evaluation traffic: its request queue holds 8, and a ninth concurrent request is refused with a
500 rather than queued. The single-session suite never has more than 8 calls outstanding and sees nothing; a Gym
rollout batch does (R10: 500s under load, whether or not Gym's retries then get an answer).
"""
from __future__ import annotations

from reference_impl.server.protocol import ApiError
from reference_impl.server.service import Service

REPRODUCES = "an endpoint that sheds concurrent load with 5xx instead of queueing (R10: server errors under load)"
CAPACITY = 8


class Mutant(Service):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = 0

    async def generate(self, prompt_ids, params):
        if self.in_flight >= CAPACITY:  # the defect: refused, not queued
            raise ApiError(500, f"engine queue full ({CAPACITY} requests in flight)", type="internal_server_error")
        self.in_flight += 1
        try:
            return await super().generate(prompt_ids, params)
        finally:
            self.in_flight -= 1
