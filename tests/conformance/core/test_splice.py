"""The §7.4 splice model against the contract's unit vectors (§7.7) and worked examples (§7.6): check M10."""
import pytest
from hypothesis import given, strategies as st

from conformance.core import SpliceError, splice

VECTORS = [  # (M, TP, T, eos, expected)
    ([], [9, 2], [9, 2, 33, 44], 2, [9, 2, 33, 44]),
    ([100, 2], [9, 2, 9, 2], [9, 2, 9, 2, 77, 88], 2, [100, 2, 77, 88]),
    ([100, 101], [9, 2], [9, 2, 77], 2, [100, 101, 2, 77]),
    ([11, 12, 99, 99, 99, 55, 2], [11, 12, 88, 88, 88, 56, 2], [11, 12, 56, 2, 70, 71, 2, 40, 41], 2,
     [11, 12, 99, 99, 99, 55, 2, 70, 71, 2, 40, 41]),
    ([11, 12, 13, 40, 41, 220, 17, 2], [11, 12, 13, 40, 41, 1001, 2], [11, 12, 13, 40, 41, 1001, 2, 21, 22, 40, 41], 2,
     [11, 12, 13, 40, 41, 220, 17, 2, 21, 22, 40, 41]),
    ([11, 12, 13, 40, 41, 220, 17], [11, 12, 13, 40, 41, 1001, 2], [11, 12, 13, 40, 41, 1001, 2, 21, 22, 40, 41], 2,
     [11, 12, 13, 40, 41, 220, 17, 2, 21, 22, 40, 41]),
    ([100, 11], [9, 2], [9, 2, 77, 88], {2, 11}, [100, 11, 77, 88]),
    ([5, 11, 6, 2], [5, 11, 7, 2], [5, 11, 7, 2, 77], {2, 11}, [5, 11, 6, 2, 77]),
]


@pytest.mark.parametrize("m, tp, t, eos, expected", VECTORS)
def test_unit_vectors(m, tp, t, eos, expected):
    assert splice(m, tp, t, eos) == expected


@pytest.mark.parametrize("m, tp, t, eos, message", [
    ([7, 2], [9, 9, 9], [9, 9, 9, 2, 10], 2, "no EOS"),
    ([1], [1, 2], [1, 2], None, "eos_token_id"),
    ([100, 2], [9, 2], [9, 77], 2, "EOS token #1 not found"),
])
def test_error_vectors(m, tp, t, eos, message):
    with pytest.raises(SpliceError, match=message):
        splice(m, tp, t, eos)


@given(st.lists(st.integers(3, 9), max_size=6), st.booleans(), st.lists(st.integers(3, 9), max_size=4),
       st.lists(st.integers(3, 9), max_size=4))
def test_result_starts_with_m_and_ends_with_a_suffix_of_t(body, ends_in_eos, history, tail):
    m = body + [2] if ends_in_eos else body
    if not m:
        return
    tp = history + [2]
    t = history + [2] + tail
    out = splice(m, tp, t, 2)
    assert out[:len(m)] == m
    rest = out[len(m):]
    assert t[len(t) - len(rest):] == rest
