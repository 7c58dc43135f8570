"""How loop checks run: one streaming pass over the dumps, step by step, feeding every check at once.

The rollouts and train-batches dumps are read in lockstep by step (each file's lines must be in step order), so
only one step's lines are in memory: a gigabyte of rollouts is checked in the memory of its largest step. Each
check is a small class registered by catalogue id: it sees every step (:meth:`LoopCheck.step`), records
violations (the first one becomes its failure, with evidence; the rest are counted), and may conclude in
:meth:`LoopCheck.finish`. :func:`judge` returns each check's outcome: ``None`` (pass), a
:class:`CheckFailure`, or a :class:`CheckSkipped` saying which dump it needs.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ...core import CheckFailure, CheckSkipped, Evidence
from ...dumps import DumpError, RolloutLine, TrainLine, read_dump
from ._expected import ESTIMATORS

TRUNCATION = ("train", "drop")  # what a loop declares it does with a response cut off by its token budget


@dataclass(frozen=True)
class LoopSettings:
    """What the loop checks read and what the loop under test declares about itself."""

    rollouts: Path
    batches: Path | None = None
    advantage: str = "grpo"          # the declared estimator (L2): grpo | dr_grpo | loo | rloo
    truncation: str = "train"        # the declared handling of truncated responses (R9): train | drop
    checks: tuple[str, ...] = ()     # only these ids (empty: all)

    def __post_init__(self) -> None:
        if self.advantage not in ESTIMATORS:
            raise ValueError(f"unknown advantage estimator {self.advantage!r}; known: {', '.join(ESTIMATORS)}")
        if self.truncation not in TRUNCATION:
            raise ValueError(f"unknown truncation handling {self.truncation!r}; known: {', '.join(TRUNCATION)}")


@dataclass
class StepData:
    """One step's lines of both dumps, each with its 1-based line number."""

    step: int
    rollouts: list[tuple[int, RolloutLine]] = field(default_factory=list)
    trains: list[tuple[int, TrainLine]] = field(default_factory=list)

    def rollout(self, rollout_id: str) -> tuple[int, RolloutLine] | None:
        return self._by_id.get(rollout_id)

    def trained(self, rollout_id: str) -> list[tuple[int, TrainLine]]:
        return self._trains_by_id.get(rollout_id, [])

    def succeeded(self) -> Iterator[tuple[int, RolloutLine]]:
        """The rollouts that did not fail (a failed one is judged by R2 alone: it must carry its error)."""
        return ((n, r) for n, r in self.rollouts if not r.error)

    def __post_init__(self) -> None:
        self._by_id = {r.rollout_id: (n, r) for n, r in self.rollouts}
        self._trains_by_id: dict[str, list[tuple[int, TrainLine]]] = {}
        for n, t in self.trains:
            self._trains_by_id.setdefault(t.rollout_id, []).append((n, t))


def _by_step(path: Path, document: str) -> Iterator[tuple[int, list]]:
    current, bucket = None, []
    for number, line in read_dump(path, document):
        if current is not None and line.step < current:
            raise DumpError(path, number, f"step {line.step} after step {current}: lines must be in step order")
        if line.step != current and bucket:
            yield current, bucket
            bucket = []
        current = line.step
        bucket.append((number, line))
    if bucket:
        yield current, bucket


def steps(rollouts: Path, batches: Path | None = None) -> Iterator[StepData]:
    """Both dumps merged step by step (a step present in only one file comes with the other list empty)."""
    a = _by_step(rollouts, "rollouts")
    b = _by_step(batches, "batches") if batches is not None else iter(())
    ra, rb = next(a, None), next(b, None)
    while ra is not None or rb is not None:
        step = min(s for s in (ra and ra[0], rb and rb[0]) if s is not None)
        data = StepData(step, ra[1] if ra and ra[0] == step else [], rb[1] if rb and rb[0] == step else [])
        if ra and ra[0] == step:
            ra = next(a, None)
        if rb and rb[0] == step:
            rb = next(b, None)
        yield data


class LoopCheck:
    """One loop check. Subclasses set ``id`` (and ``needs_batches``) and implement :meth:`step`."""

    id: ClassVar[str]
    needs_batches: ClassVar[bool] = False
    unit: ClassVar[str] = "rollouts"  # what violations are counted in

    def __init__(self, settings: LoopSettings) -> None:
        self.settings = settings
        self.first: CheckFailure | None = None
        self.violations = 0
        self.skipped: CheckSkipped | None = None  # set when the dumps cannot show this check's property

    def step(self, data: StepData) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Called once after the last step (statistical checks conclude here)."""

    def where(self, document: str, number: int) -> str:
        path = self.settings.rollouts if document == "rollouts" else self.settings.batches
        return f"{path}:{number}"

    def violation(self, verdict: str, where: str, *, count: int = 1, **evidence: Any) -> None:
        """``count`` units violate the rule; the first violation's evidence is kept."""
        self.violations += count
        if self.first is None:
            notes = evidence.pop("notes", [])
            self.first = CheckFailure(self.id, verdict, Evidence(verdict=verdict, endpoint=where, notes=notes,
                                                                  **evidence))

    def outcome(self) -> CheckFailure | None:
        if self.first is not None and self.violations > 1:
            self.first.evidence.notes.append(f"{self.violations} {self.unit} violate this in all; the first is shown")
        return self.first


REGISTRY: dict[str, type[LoopCheck]] = {}


def loop_check(cls: type[LoopCheck]) -> type[LoopCheck]:
    """Register a loop check class under its catalogue id."""
    from ...core import CATALOGUE
    if cls.id not in CATALOGUE:
        raise KeyError(f"unknown check id {cls.id!r}")
    REGISTRY[cls.id] = cls
    return cls


def judge(settings: LoopSettings) -> dict[str, CheckFailure | CheckSkipped | None]:
    """Every (selected) loop check's outcome after one pass over the dumps; :class:`DumpError` if a dump is bad."""
    ids = [c for c in REGISTRY if not settings.checks or c in settings.checks]
    outcomes: dict[str, CheckFailure | CheckSkipped | None] = {}
    running: list[LoopCheck] = []
    for check_id in ids:
        cls = REGISTRY[check_id]
        if cls.needs_batches and settings.batches is None:
            outcomes[check_id] = CheckSkipped("needs --train-batches (the trained sequences)")
        else:
            running.append(cls(settings))
    for data in steps(settings.rollouts, settings.batches):
        for check in running:
            check.step(data)
    for check in running:
        check.finish()
        outcomes[check.id] = check.skipped or check.outcome()
    return outcomes
