"""Typed check failures: native pytest failures (``AssertionError``) that carry everything the report needs."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class TokenDiff:
    """Two id sequences that should agree; ``first_diff`` is None when they are equal."""

    expected: list[int]
    actual: list[int]
    first_diff: int | None
    expected_label: str = "expected"
    actual_label: str = "actual"
    expected_context: str = ""
    actual_context: str = ""


@dataclass
class Evidence:
    """What reproduces and explains a verdict (schema ``gym-conformance/report/1``, ``results[].evidence``)."""

    verdict: str
    endpoint: str = ""
    request: Any = None
    response: Any = None
    curl: str | None = None
    token_diff: TokenDiff | None = None
    metrics: dict[str, Any] | None = None
    hypothesis: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CheckFailure(AssertionError):
    """A check saw the endpoint violate its requirement.

    Subclassing ``AssertionError`` makes it an ordinary pytest failure; the plugin reads the fields to
    grade the result (MUST fails the run, SHOULD only under ``--conformance-strict``).
    """

    def __init__(self, check_id: str, verdict: str, evidence: Evidence | None = None, *,
                 name: str = "", tier: str = "", requirement: str = "") -> None:
        from ._catalogue import CATALOGUE  # local: the catalogue imports nothing from here at module level

        spec = CATALOGUE.get(check_id)
        self.check_id = check_id
        self.name = name or (spec.name if spec else check_id)
        self.tier = tier or (spec.tier if spec else "MUST")
        self.requirement = requirement or (spec.requirement if spec else "")
        self.verdict = verdict
        self.evidence = evidence if evidence is not None else Evidence(verdict=verdict)
        if not self.evidence.verdict:
            self.evidence.verdict = verdict
        super().__init__(f"[{check_id} {self.name}, {self.tier}] {verdict}")


class CheckSkipped(Exception):
    """The check cannot run against this target (feature not served, tokenizer not given); not a failure."""


class CheckInfo(Exception):
    """An INFO-tier observation: behaviour the contract leaves open, reported with evidence, never failing."""

    def __init__(self, check_id: str, verdict: str, evidence: Evidence | None = None) -> None:
        self.check_id = check_id
        self.verdict = verdict
        self.evidence = evidence if evidence is not None else Evidence(verdict=verdict)
        super().__init__(f"[{check_id}] {verdict}")


class ClientFinding(CheckInfo):
    """The client's own Gym version broke the rollout (e.g. 0.4.0 drops an empty assistant turn with its ids):
    reported with the Gym version named, never as an endpoint failure."""


class EndpointError(Exception):
    """The endpoint could not be driven at all (unreachable, timeouts, non-JSON): names the cause in one line."""

    def __init__(self, message: str, *, request: Any = None, response: Any = None, status: int | None = None,
                 url: str = "") -> None:
        self.request, self.response, self.status, self.url = request, response, status, url
        super().__init__(message)

    @property
    def refused(self) -> bool:
        """The endpoint answered with a 4xx: a loud refusal, which several checks accept as a right answer."""
        return self.status is not None and 400 <= self.status < 500


class EndpointStopped(EndpointError):
    """The run stopped driving this endpoint (it stopped answering, or the run's deadline passed): the checks
    still to come end as errors naming the cause, not as failures of what they check, and the run exits 2."""


class ContextOverflow(EndpointError):
    """The endpoint answered Gym's context-overflow 400 (contract §5): the conversation does not fit."""
