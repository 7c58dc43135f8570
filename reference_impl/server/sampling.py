"""Sampling pin (contract §8.5, probe P25) and the max_tokens clamp (§8.4, probes P26/P27)."""
from __future__ import annotations

from dataclasses import dataclass

from .protocol import bad_request

_TOL = 1e-6


@dataclass(frozen=True)
class Profile:
    temperature: float
    top_p: float

    def matches(self, temperature: float, top_p: float) -> bool:
        return abs(self.temperature - temperature) <= _TOL and abs(self.top_p - top_p) <= _TOL


@dataclass(frozen=True)
class SamplingPolicy:
    """Server-wide sampling rule. With a training profile, off-profile requests are refused (or replaced)."""

    train: Profile | None = None
    validation: Profile | None = None
    overrides: bool = False

    def resolve(self, temperature: float | None, top_p: float | None) -> tuple[float, float]:
        """(temperature, top_p) the engine samples with.

        Never falls back to generation_config.json (P25: tiny-qwen3 ships top_p 0.95 there on purpose):
        unpinned defaults are the plain distribution, temperature 1 and top_p 1.
        """
        if self.train is None:
            return (1.0 if temperature is None else float(temperature), 1.0 if top_p is None else float(top_p))
        profiles = [p for p in (self.train, self.validation) if p is not None]
        if temperature is not None and top_p is not None:
            for p in profiles:
                if p.matches(float(temperature), float(top_p)):
                    return p.temperature, p.top_p
        if self.overrides:
            return self.train.temperature, self.train.top_p
        allowed = " or ".join(f"(temperature={p.temperature}, top_p={p.top_p})" for p in profiles)
        if top_p is None or temperature is None:
            field = "top_p" if top_p is None else "temperature"
            raise bad_request(f"{field} must be set explicitly: this server is pinned to {allowed} and an unset "
                              "value would not be checked (contract §8.5)", field)
        raise bad_request(f"off-policy sampling: (temperature={temperature}, top_p={top_p}) does not match the "
                          f"training profile; allowed: {allowed} (contract §8.5)", "temperature")


def clamp_max_tokens(requested: int | None, prompt_len: int, max_model_len: int) -> int:
    """max_tokens after the splice: min(requested, room left); no room -> 400 "context length" (§8.4).

    The clamp uses the *spliced* prompt length (M22) and an omitted max_tokens means "all the room
    left", never a silent 16 (P27).
    """
    room = max_model_len - prompt_len
    if room <= 0:
        raise bad_request(f"This model's maximum context length is {max_model_len} tokens. However, your "
                          f"prompt has {prompt_len} tokens, which leaves no room for generation (context length "
                          "exceeded).", "messages")
    return room if requested is None else min(requested, room)
