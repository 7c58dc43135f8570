"""Token-level evidence: where two id sequences part, what the ids around it decode to, and a one-line verdict."""
from __future__ import annotations

from typing import Callable, Sequence

from ._failures import TokenDiff

Decode = Callable[[list[int]], str]


def first_difference(expected: Sequence[int], actual: Sequence[int]) -> int | None:
    """Index of the first position where the sequences differ (a length difference counts); None if equal."""
    for i, (a, b) in enumerate(zip(expected, actual)):
        if a != b:
            return i
    return None if len(expected) == len(actual) else min(len(expected), len(actual))


def prefix_difference(prefix: Sequence[int], seq: Sequence[int]) -> int | None:
    """First position where ``seq`` stops extending ``prefix``; None when ``seq`` starts with ``prefix``."""
    for i, a in enumerate(prefix):
        if i >= len(seq) or seq[i] != a:
            return i
    return None


def _divergent_runs(expected: Sequence[int], actual: Sequence[int], start: int) -> tuple[list[int], list[int]]:
    """The differing runs from ``start`` up to where the two sequences re-synchronise.

    Re-tokenization replaces a few ids by a few others and then agrees again (``[26951, 3834]`` ->
    ``[94224]``): find the smallest skips (i, j) after which a short run matches on both sides. When
    ``expected`` is a prefix candidate, reaching its end counts as re-synchronised.
    """
    e, a = list(expected[start:]), list(actual[start:])
    best: tuple[int, int] | None = None
    for total in range(0, 25):
        for i in range(0, min(total, len(e)) + 1):
            j = total - i
            if j > len(a):
                continue
            run = e[i:i + 3]
            if (not run and i == len(e)) or (run and a[j:j + len(run)] == run):
                best = (i, j)
                break
        if best:
            break
    if best is None:  # nothing re-aligns nearby (e.g. a stripped block): show a readable window
        return e[:12], a[:12]
    return e[:best[0]], a[:best[1]]


def _context(ids: Sequence[int], pos: int, decode: Decode | None, width: int) -> str:
    window = list(ids[max(0, pos - width):pos + width])
    if decode is None:
        return " ".join(map(str, window))
    try:
        before = decode(list(ids[max(0, pos - width):pos]))
        after = decode(list(ids[pos:pos + width]))
    except Exception:  # a decoder that cannot handle arbitrary ids must not hide the failure itself
        return " ".join(map(str, window))
    return f"{before!r} ‖ {after!r}"


def token_diff(expected: Sequence[int], actual: Sequence[int], *, decode: Decode | None = None,
               expected_label: str = "expected", actual_label: str = "actual", prefix: bool = False,
               width: int = 6) -> TokenDiff:
    """Build the ``token_diff`` evidence; with ``prefix=True`` only ``expected`` as a prefix of ``actual`` counts."""
    pos = prefix_difference(expected, actual) if prefix else first_difference(expected, actual)
    at = 0 if pos is None else pos
    return TokenDiff(expected=list(expected), actual=list(actual), first_diff=pos, expected_label=expected_label,
                     actual_label=actual_label, expected_context=_context(expected, at, decode, width),
                     actual_context=_context(actual, at, decode, width))


def describe_divergence(expected: Sequence[int], actual: Sequence[int], pos: int, *,
                        decode: Decode | None = None, what: str = "the previous generation",
                        subject: str = "prompt") -> str:
    """Name the drift class behind a divergence: re-tokenization (same text, other ids), stripping, re-templating.

    The classification compares decoded text, so it needs ``decode``; without it the verdict states ids only.
    """
    e_run, a_run = _divergent_runs(expected, actual, pos)
    ids = f"{e_run} became {a_run} at position {pos}"
    if pos >= len(actual):
        return f"{subject} is shorter than {what}: it ends at position {pos} (truncated or history dropped)"
    if decode is None:
        return f"{subject} diverges from {what}: {ids}"
    try:
        e_text, a_text = decode(list(e_run)), decode(list(a_run))
    except Exception:
        return f"{subject} diverges from {what}: {ids}"
    if e_text == a_text:
        return f"{subject} re-tokenized {what}: {ids} (same text {e_text!r})"
    if not a_run or (e_text.startswith(a_text) and len(a_text) < len(e_text)) or "<think>" in e_text:
        return f"{subject} dropped part of {what} (template stripping?): {ids}, text {e_text!r} -> {a_text!r}"
    return f"{subject} re-templated {what}: {ids}, text {e_text!r} -> {a_text!r}"
