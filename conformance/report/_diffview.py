"""Aligned, windowed view of a :class:`TokenDiff` shared by the HTML and Markdown renderers.

Prompts run to thousands of ids; a reader needs the few around the first difference. The view keeps
``radius`` ids of common prefix, the differing hunk of each side (gap cells pad the shorter one, so
what follows lines up again), then ``radius`` ids after it, and counts what it left out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..core import TokenDiff


@dataclass
class Cell:
    pos: int | None  # index into this side's sequence; None for a gap cell
    token: int | None
    kind: str  # "same" | "diff" | "first" (first differing position) | "gap" | "tail" (one side only)


@dataclass
class Side:
    label: str
    length: int
    cells: list[Cell]
    hidden_before: int
    hidden_after: int
    context: str


@dataclass
class DiffView:
    first_diff: int | None
    phrase: str
    first_column: int | None  # column index of the first difference
    sides: tuple[Side, Side]


def diff_span(expected: Sequence[int], actual: Sequence[int], start: int, *,
              search: int = 64) -> tuple[int, int]:
    """End (exclusive) of the differing run on each side: the nearest point where the two resync.

    Resync means the rest of the shorter remainder matches (so "``P_2`` starts with ``P_1 + G_1``"
    works as well as equal-length comparisons): ``[.., 26951, 3834, 151645]`` vs
    ``[.., 94224, 151645, 198, ..]`` from ``start`` gives ``(start + 2, start + 1)``, the hunk a
    re-tokenization produces. Beyond ``search`` ids either side, everything after ``start`` differs.
    The cells the HTML highlights and the heading :func:`hunk_phrase` prints come from this one span.
    """
    len_e, len_a = len(expected), len(actual)
    for total in range(1, 2 * search + 1):
        for skip_e in range(max(0, total - search), min(total, search) + 1):
            i, j = start + skip_e, start + total - skip_e
            if i > len_e or j > len_a:
                continue
            n = min(len_e - i, len_a - j)
            if (n == 0 and i == len_e and j == len_a) or (n > 0 and expected[i:i + n] == actual[j:j + n]):
                return i, j
    return len_e, len_a


def hunk_phrase(diff: TokenDiff, *, max_ids: int = 8) -> str:
    """``[26951, 3834] became [94224] at position 3`` (``"identical"`` when nothing differs)."""
    if diff.first_diff is None:
        return "identical"
    start = diff.first_diff
    expected_end, actual_end = diff_span(diff.expected, diff.actual, start)

    def ids(seq: Sequence[int], end: int) -> str:
        chunk = list(seq[start:end])
        shown = ", ".join(str(i) for i in chunk[:max_ids])
        return f"[{shown}{', …' if len(chunk) > max_ids else ''}]"

    return f"{ids(diff.expected, expected_end)} became {ids(diff.actual, actual_end)} at position {start}"


def diff_view(diff: TokenDiff, *, radius: int = 8, max_span: int = 16) -> DiffView:
    expected, actual = diff.expected, diff.actual
    if diff.first_diff is None:
        columns = _identical_columns(expected, actual, 2 * radius)
        first_column = None
    else:
        columns, first_column = _hunk_columns(expected, actual, diff.first_diff, radius, max_span)
    sides = []
    for side, (seq, label, context) in enumerate(((expected, diff.expected_label, diff.expected_context),
                                                  (actual, diff.actual_label, diff.actual_context))):
        cells = [column[side] for column in columns]
        positions = [cell.pos for cell in cells if cell.pos is not None]
        hidden_before = positions[0] if positions else min(len(seq), diff.first_diff or 0)
        hidden_after = len(seq) - (positions[-1] + 1 if positions else hidden_before)
        sides.append(Side(label, len(seq), cells, hidden_before, hidden_after, context))
    return DiffView(diff.first_diff, hunk_phrase(diff), first_column, (sides[0], sides[1]))


def _cell(seq: list[int], pos: int, kind: str) -> Cell:
    return Cell(pos, seq[pos], kind) if pos < len(seq) else Cell(None, None, "gap")


def _identical_columns(expected: list[int], actual: list[int], width: int) -> list[tuple[Cell, Cell]]:
    # Nothing differs: the tail is where continuity checks look, so show the last ids.
    longest = max(len(expected), len(actual))
    positions = range(max(0, longest - width), longest)
    return [(_cell(expected, pos, "same"), _cell(actual, pos, "same")) for pos in positions]


def _hunk_columns(expected: list[int], actual: list[int], start: int, radius: int,
                  max_span: int) -> tuple[list[tuple[Cell, Cell]], int]:
    columns: list[tuple[Cell, Cell]] = []
    for pos in range(max(0, start - radius), start):
        kind = "same" if expected[pos] == actual[pos] else "diff"  # the producer's first_diff is trusted
        columns.append((_cell(expected, pos, kind), _cell(actual, pos, kind)))
    first_column = len(columns)
    end_e, end_a = diff_span(expected, actual, start)
    width = max(end_e - start, end_a - start)
    for k in range(min(width, max_span)):
        kind = "first" if k == 0 else "diff"
        columns.append((_cell(expected, start + k, kind) if start + k < end_e else Cell(None, None, "gap"),
                        _cell(actual, start + k, kind) if start + k < end_a else Cell(None, None, "gap")))
    if width > max_span:  # the hunk itself is long: stop inside it, the hidden counts say how much is left
        return columns, first_column
    for k in range(radius):
        pos_e, pos_a = end_e + k, end_a + k
        if pos_e >= len(expected) and pos_a >= len(actual):
            break
        both = pos_e < len(expected) and pos_a < len(actual)
        kind = "same" if both else "tail"
        columns.append((_cell(expected, pos_e, kind), _cell(actual, pos_a, kind)))
    return columns, first_column


def diff_text(view: DiffView) -> list[str]:
    """Plain-text rendering (Markdown, JUnit): ``label: … N more | ids [hunk] ids | … M more``."""
    width = max(len(side.label) for side in view.sides)
    lines = []
    for side in view.sides:
        parts = [f"… {side.hidden_before} more |"] if side.hidden_before else []
        cells = list(side.cells)
        while cells and cells[-1].kind == "gap":  # this side ended: padding only matters inside the hunk
            cells.pop()
        for cell in cells:
            text = "·" if cell.token is None else str(cell.token)
            parts.append(f"[{text}]" if cell.kind in ("first", "diff") else text)
        if side.hidden_after:
            parts.append(f"| … {side.hidden_after} more")
        lines.append(f"{side.label.ljust(width)} : {' '.join(parts)}")
    return lines
