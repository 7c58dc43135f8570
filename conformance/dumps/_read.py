"""Streaming readers for the loop dumps: one line in memory at a time, every problem named by file and line.

A 1 GB rollouts file is read line by line (never loaded whole), so memory stays flat. Everything that can be
wrong with a file -- unreadable, empty, a line that is not JSON, a field of the wrong type, a schema version
this harness does not know -- is a :class:`DumpError` whose message is one line a person can act on
(``rollouts.jsonl:12: calls[0].generation_log_probs: 3 generation_log_probs for 4 generation_token_ids``).
"""
from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ValidationError

from ._models import DOCUMENTS, SCHEMA_IDS, MetricsLine


class DumpError(ValueError):
    """A dump file cannot be read as its format says; ``line`` is 1-based (None: the file as a whole)."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        super().__init__(str(path), line, problem)
        self.path, self.line, self.problem = Path(path), line, problem

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{where}: {self.problem}"


def _field(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _problem(exc: ValidationError, document: str) -> str:
    err = exc.errors(include_url=False)[0]
    loc = tuple(p for p in err["loc"] if p not in ("function-after[_lengths()]",))
    if loc == ("schema",) and err["type"] == "literal_error":
        return (f"schema {err['input']!r} is not one this version of gym-conformance reads "
                f"(it reads {SCHEMA_IDS[document]!r})")
    if loc == ("schema",) and err["type"] == "missing":
        return f"no schema field: every {document} line starts with \"schema\": \"{SCHEMA_IDS[document]}\""
    if err["type"] == "json_invalid":
        return f"not JSON ({err['msg'].removeprefix('Invalid JSON: ')})"
    message = err["msg"].removeprefix("Value error, ")
    return f"{_field(loc)}: {message}" if loc else message


def parse_line(raw: bytes | str, document: str) -> BaseModel:
    """One line of ``document`` (rollouts | batches | metrics) as its model; ValueError names the problem."""
    try:
        return DOCUMENTS[document].model_validate_json(raw)
    except ValidationError as exc:
        raise ValueError(_problem(exc, document)) from None


def read_dump(path: Path | str, document: str) -> Iterator[tuple[int, BaseModel]]:
    """``(line number, model)`` for every non-blank line of a JSONL dump, streamed; :class:`DumpError` on the
    first problem. An empty file is a problem too: a check that reads nothing must not pass."""
    path = Path(path)
    if document == "metrics" and path.suffix.lower() == ".csv":
        yield from _read_metrics_csv(path)
        return
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DumpError(path, None, f"cannot read: {exc.strerror or exc}") from None
    seen = 0
    with handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            seen += 1
            try:
                yield number, parse_line(raw, document)
            except ValueError as exc:
                raise DumpError(path, number, str(exc)) from None
    if not seen:
        raise DumpError(path, None, f"empty: no {document} lines")


def _read_metrics_csv(path: Path) -> Iterator[tuple[int, BaseModel]]:
    """A CSV of scalars with a ``step`` column (what most loggers export); blank cells are left out."""
    try:
        handle = path.open(newline="")
    except OSError as exc:
        raise DumpError(path, None, f"cannot read: {exc.strerror or exc}") from None
    seen = 0
    with handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "step" not in reader.fieldnames:
            raise DumpError(path, 1, f"no 'step' column (columns: {', '.join(reader.fieldnames or []) or 'none'})")
        for row in reader:
            number = reader.line_num
            values: dict = {}
            try:
                for key, cell in row.items():
                    if key is None or cell is None or not cell.strip():
                        continue
                    values[key] = int(cell) if key == "step" else float(cell)
            except ValueError:
                raise DumpError(path, number, f"{key}: {cell!r} is not a number") from None
            if "step" not in values:
                raise DumpError(path, number, "step: missing")
            seen += 1
            try:
                yield number, MetricsLine.model_validate(values)
            except ValidationError as exc:
                raise DumpError(path, number, _problem(exc, "metrics")) from None
    if not seen:
        raise DumpError(path, None, "empty: no metrics rows")

