"""What people watch during ``gym-conformance run``: a live progress display per check family, then a summary.

:class:`LiveProgress` is the session's console (``run`` registers it as ``gym-conformance-console``): the
plugin's session object calls :meth:`~LiveProgress.collected`, :meth:`~LiveProgress.started` and
:meth:`~LiveProgress.finished` from ``pytest_collection_finish`` / ``pytest_runtest_logstart`` /
``pytest_runtest_logreport``. It is used only on a terminal and without ``--quiet``; the summary
(:func:`read_summary`) is read from ``report.json``, the run's source of truth, and shown as rich tables
on a terminal (:func:`render`) or as plain lines otherwise (:func:`plain_lines`), so CI logs stay clean.
"""
from __future__ import annotations

import json
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from . import CONSOLE  # the name the session looks the display up by

FAMILIES = {"E": "endpoint", "M": "multi-turn", "R": "refit", "T": "template"}  # the catalogue's id prefixes
TIERS = ("MUST", "SHOULD", "INFO")
OUTCOMES = ("pass", "fail", "non_strict", "info", "skipped", "error")
FAILING = ("fail", "error", "non_strict")
STYLE = {"pass": "green", "fail": "bold red", "error": "bold red", "non_strict": "yellow", "info": "cyan",
         "skipped": "dim"}


def family(check_id: str) -> str:
    """The check family: the catalogue id's letter prefix (E3 -> E)."""
    match = re.match(r"[A-Z]+", check_id)
    return match.group(0) if match else check_id


def terminal() -> Console | None:
    """A rich console on the terminal, or None when stdout is not one (pipes, CI logs, captured output).

    It writes to a duplicate of stdout's file descriptor: pytest's output capture points descriptor 1
    elsewhere while a check runs, and the live display must keep drawing.
    """
    try:
        if not sys.stdout.isatty():
            return None
        fd = os.dup(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    console = Console(file=os.fdopen(fd, "w", buffering=1, encoding=sys.stdout.encoding or "utf-8"))
    return console if console.is_terminal else None


class LiveProgress:
    """One bar per check family (count done, failures, elapsed time, the check running now) and one for all."""

    def __init__(self, console: Console) -> None:
        self.__name__ = CONSOLE  # pluggy registers a plugin object under its __name__ (pytest.main(plugins=...))
        self.progress = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"), TextColumn("{task.description:<11}"), BarColumn(),
            MofNCompleteColumn(), TextColumn("{task.fields[failed]}"), TimeElapsedColumn(),
            TextColumn("{task.fields[current]}"), console=console, redirect_stdout=False, redirect_stderr=False)
        self.tasks: dict[str, Any] = {}
        self.failed: Counter[str] = Counter()
        self.running: dict[str, list[str]] = {}  # family (and "*") -> node ids running now (several under xdist)
        self.labels: dict[str, str] = {}  # node id -> "M3 multiturn/bpe-retokenization"

    def _task(self, key: str, label: str, total: int | None) -> Any:
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(label, total=total, start=False, failed="", current="")
        return self.tasks[key]

    def collected(self, check_ids: list[str]) -> None:
        counts = Counter(family(c) for c in check_ids)
        self._task("*", "all checks", sum(counts.values()))
        order = list(FAMILIES)
        for fam in sorted(counts, key=lambda f: (order.index(f) if f in order else len(order), f)):
            self._task(fam, f"{fam} {FAMILIES.get(fam, '')}".strip(), counts[fam])
        self.progress.start()

    def started(self, check_id: str, nodeid: str) -> None:
        from ..core import CATALOGUE
        spec = CATALOGUE.get(check_id)
        label = self.labels[nodeid] = f"{check_id} {spec.name}" if spec else check_id
        fam = family(check_id)
        for key in ("*", fam):
            task = self._task(key, "all checks" if key == "*" else fam, None)
            self.progress.start_task(task)
            self.running.setdefault(key, []).append(nodeid)
            self.progress.update(task, current=label)

    def finished(self, check_id: str, nodeid: str, outcome: str) -> None:
        for key in ("*", family(check_id)):
            task = self._task(key, "all checks" if key == "*" else key, None)
            running = self.running.get(key, [])
            if nodeid in running:
                running.remove(nodeid)
            if outcome in ("fail", "error"):
                self.failed[key] += 1
            failed = f"[red]{self.failed[key]} failed[/]" if self.failed[key] else ""
            self.progress.update(task, advance=1, failed=failed,
                                 current=self.labels.get(running[-1], "") if running else "")

    def stop(self) -> None:
        self.progress.stop()

    # pytest hooks of its own: the display ends with the session (or an abort)
    def pytest_sessionfinish(self) -> None:
        self.stop()

    def pytest_unconfigure(self) -> None:
        self.stop()


@dataclass
class Summary:
    """What the end-of-run summary shows, read from report.json."""

    verdict: str
    counts: dict[str, Counter[str]]  # tier -> outcome -> count
    failing: list[dict[str, Any]]  # check_id, name, tier, outcome, message
    paths: list[Path] = field(default_factory=list)

    @property
    def totals(self) -> Counter[str]:
        return sum(self.counts.values(), Counter())


def read_summary(report_dir: Path, *, since: float = 0.0, extra: tuple[Path, ...] = ()) -> Summary | None:
    """The summary of the run whose report is in ``report_dir``; None when there is no report written at or after
    ``since`` (a run that stopped before it could write one must not show an earlier run's)."""
    path = report_dir / "report.json"
    try:
        if path.stat().st_mtime < since:
            return None
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    results = [r for r in data.get("results", []) if isinstance(r, dict)]
    counts: dict[str, Counter[str]] = {}
    for r in results:
        counts.setdefault(str(r.get("tier")), Counter())[str(r.get("outcome"))] += 1
    failing = [r for r in results if r.get("outcome") in FAILING]
    failing.sort(key=lambda r: (FAILING.index(r["outcome"]), _natural(str(r.get("check_id", "")))))
    verdict = str((data.get("summary") or {}).get("verdict", "error"))
    paths = [p for p in (report_dir / "report.html", path, report_dir / "junit.xml", *extra) if p.exists()]
    return Summary(verdict, counts, failing, paths)


def _natural(check_id: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", check_id)]


def _counts_text(counts: Counter[str]) -> str:
    return ", ".join(f"{counts[o]} {o.replace('_', '-')}" for o in OUTCOMES if counts[o]) or "no checks run"


def _headline(summary: Summary) -> str:
    return {"pass": "every MUST check passed", "fail": "a check failed",
            "error": "the suite could not run (or a check could not)"}.get(summary.verdict, summary.verdict)


def plain_lines(summary: Summary, *, brief: bool = False) -> list[str]:
    """The summary as plain text: the verdict with counts, then (unless ``brief``) counts per tier, the failing
    checks with their one-line verdicts, and the report paths."""
    lines = [f"gym-conformance: {summary.verdict} ({_counts_text(summary.totals)})"]
    if not brief:
        lines += [f"  {tier}: {_counts_text(summary.counts[tier])}" for tier in _tiers(summary)]
    for r in summary.failing:
        lines.append(f"  {r['outcome'].replace('_', '-')} {r.get('check_id')} [{r.get('tier')}] {r.get('name')}: "
                     f"{_one_line(r.get('message'))}")
    if not brief:
        lines += [f"  {_kind(p)}: {p}" for p in summary.paths]
    return lines


def _tiers(summary: Summary) -> list[str]:
    return [t for t in TIERS if t in summary.counts] + sorted(set(summary.counts) - set(TIERS))


def _one_line(text: Any) -> str:
    return " ".join(str(text or "").split())


def _kind(path: Path) -> str:
    return {"report.html": "report", "report.json": "json", "junit.xml": "junit", "pytest.log": "log"}.get(
        path.name, "file")


def render(summary: Summary, console: Console) -> None:
    """The summary as rich tables: verdict, counts per tier and outcome, failing checks, report paths."""
    style = STYLE.get(summary.verdict, "bold")
    console.print(f"[{style}]gym-conformance: {summary.verdict.upper()}[/] — {_headline(summary)}")
    shown = [o for o in OUTCOMES if summary.totals[o]]
    counts = Table(title="checks by tier and outcome", title_justify="left")
    counts.add_column("tier")
    for outcome in shown:
        counts.add_column(outcome.replace("_", "-"), justify="right", style=STYLE[outcome])
    counts.add_column("total", justify="right")
    for tier in _tiers(summary):
        row = summary.counts[tier]
        counts.add_row(tier, *(str(row[o] or "") for o in shown), str(sum(row.values())))
    console.print(counts)
    if summary.failing:
        failing = Table(title="failing checks", title_justify="left")
        for name, kw in (("check", {"no_wrap": True}), ("tier", {}), ("outcome", {}), ("verdict", {"ratio": 1})):
            failing.add_column(name, **kw)
        for r in summary.failing:
            failing.add_row(Text(f"{r.get('check_id')} {r.get('name')}"), str(r.get("tier")),
                            Text(r["outcome"].replace("_", "-"), style=STYLE[r["outcome"]]),
                            Text(_one_line(r.get("message"))))
        console.print(failing)
    for path in summary.paths:
        console.print(f"{_kind(path)}: {path}", markup=False, highlight=False)
