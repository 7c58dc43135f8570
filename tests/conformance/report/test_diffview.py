"""The aligned, windowed token-diff view shared by the HTML, Markdown and JUnit renderers."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from report_samples import FIRST_DIFF, G_1, P_1, P_2

from conformance.core import TokenDiff, first_difference
from conformance.report._diffview import diff_span, diff_text, diff_view, hunk_phrase


def test_retokenization_hunk():
    diff = TokenDiff(P_1 + G_1, P_2, FIRST_DIFF, "P_1 + G_1", "P_2")
    assert diff_span(diff.expected, diff.actual, FIRST_DIFF) == (FIRST_DIFF + 2, FIRST_DIFF + 1)
    assert hunk_phrase(diff) == f"[26951, 3834] became [94224] at position {FIRST_DIFF}"
    expected, actual = diff_text(diff_view(diff, radius=2))
    assert expected == "P_1 + G_1 : … 66 more | 77091 198 [26951] [3834] 151645"
    assert actual == "P_2       : … 66 more | 77091 198 [94224] · 151645 198 | … 9 more"


def test_phrase_edge_cases():
    assert hunk_phrase(TokenDiff([1, 2], [1, 2], None)) == "identical"
    assert hunk_phrase(TokenDiff([1], [1, 7, 8], 1)) == "[] became [7, 8] at position 1"
    assert hunk_phrase(TokenDiff(list(range(20)), [], 0), max_ids=3) == "[0, 1, 2, …] became [] at position 0"
    assert diff_span([5, 5, 5], [5, 5], 2) == (3, 2)  # a repeated id is not counted twice


def test_view_counts_what_it_hides():
    view = diff_view(TokenDiff(list(range(100)), list(range(50)) + [-1] * 200, 50), radius=4, max_span=6)
    expected, actual = view.sides
    assert (expected.hidden_before, actual.hidden_before) == (46, 46)
    assert view.first_column == 4 and expected.cells[4].kind == actual.cells[4].kind == "first"
    assert (expected.hidden_after, actual.hidden_after) == (44, 194)  # the long hunk is cut after 6 columns


@given(st.lists(st.integers(0, 5), max_size=12), st.lists(st.integers(0, 5), max_size=12))
def test_diff_span_brackets_the_only_difference(expected, actual):
    start = first_difference(expected, actual)
    if start is None:
        return
    end_e, end_a = diff_span(expected, actual, start)
    assert start <= end_e <= len(expected) and start <= end_a <= len(actual) and (end_e, end_a) != (start, start)
    rest = min(len(expected) - end_e, len(actual) - end_a)
    assert expected[:start] == actual[:start]
    assert expected[end_e:end_e + rest] == actual[end_a:end_a + rest]
    if rest == 0:  # resync only at the very end: both sides are used up
        assert (end_e, end_a) == (len(expected), len(actual))


@given(st.lists(st.integers(0, 3), max_size=40), st.lists(st.integers(0, 3), max_size=40))
def test_view_cells_are_real_positions(expected, actual):
    view = diff_view(TokenDiff(expected, actual, first_difference(expected, actual)), radius=3, max_span=4)
    for side, seq in zip(view.sides, (expected, actual), strict=True):
        shown = [c.pos for c in side.cells if c.pos is not None]
        assert all(seq[c.pos] == c.token for c in side.cells if c.pos is not None)
        assert shown == sorted(shown) and len(set(shown)) == len(shown)
        assert side.hidden_before + len(shown) + side.hidden_after == len(seq) or not shown
