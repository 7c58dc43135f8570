"""The EOS-count splice against the contract's worked examples (§7.6) and unit vectors (§7.7)."""
from __future__ import annotations

import pytest

from reference_impl.server.splice import SpliceError, expected_prefix_eos_count, splice

DOCSTRING = ([11, 12, 13, 40, 41, 220, 17, 2], [11, 12, 13, 40, 41, 1001, 2], [11, 12, 13, 40, 41, 1001, 2, 21, 22, 40, 41])
THINK_SHIFT = ([11, 12, 99, 99, 99, 55, 2], [11, 12, 88, 88, 88, 56, 2], [11, 12, 56, 2, 70, 71, 2, 40, 41])

VECTORS = [  # (case, M, TP, T, eos, expected)
    ("empty prefix", [], [9, 2], [9, 2, 33, 44], 2, [9, 2, 33, 44]),
    ("multiple EOS", [100, 2], [9, 2, 9, 2], [9, 2, 9, 2, 77, 88], 2, [100, 2, 77, 88]),
    ("no trailing EOS (truncated)", [100, 101], [9, 2], [9, 2, 77], 2, [100, 101, 2, 77]),
    ("think shift", *THINK_SHIFT, 2, [11, 12, 99, 99, 99, 55, 2, 70, 71, 2, 40, 41]),
    ("docstring", *DOCSTRING, 2, [11, 12, 13, 40, 41, 220, 17, 2, 21, 22, 40, 41]),
    ("EOS set, other member", [100, 11], [9, 2], [9, 2, 77, 88], {2, 11}, [100, 11, 77, 88]),
    ("EOS set, counts every member", [5, 11, 6, 2], [5, 11, 7, 2], [5, 11, 7, 2, 77], {2, 11}, [5, 11, 6, 2, 77]),
]


@pytest.mark.parametrize("case,m,tp,t,eos,expected", VECTORS, ids=[v[0] for v in VECTORS])
def test_unit_vectors(case, m, tp, t, eos, expected):
    out = splice(m, tp, t, eos)
    assert out == expected
    # §7.7: every non-error result starts with M exactly and continues with a suffix of T.
    assert out[:len(m)] == m
    rest = out[len(m):]
    assert rest == t[len(t) - len(rest):] if rest else True


def test_worked_example_b_truncated_turn_gets_template_eos():
    m = [11, 12, 13, 40, 41, 220, 17]  # §7.6 (b): G_1 = [220, 17], cut by max_tokens
    assert splice(m, DOCSTRING[1], DOCSTRING[2], 2) == [11, 12, 13, 40, 41, 220, 17, 2, 21, 22, 40, 41]


def test_think_shift_keeps_the_user_turn_that_generation_2_lost():
    out = splice(*THINK_SHIFT, 2)
    assert out[-5:] == [70, 71, 2, 40, 41]


@pytest.mark.parametrize("m,tp,t,eos,match", [
    ([7, 2], [9, 9, 9], [9, 9, 9, 2, 10], 2, "no EOS"),            # no EOS in TP
    ([1], [1, 2], [1, 2], None, "no eos_token_id"),                  # tokenizer without EOS
    ([100, 2], [9, 2], [9, 77], 2, "EOS token #1 not found"),        # N-th EOS missing from T
])
def test_error_vectors(m, tp, t, eos, match):
    with pytest.raises(SpliceError, match=match):
        splice(m, tp, t, eos)


def test_stop_id_other_than_eos_is_kept_and_not_doubled():
    # §7.9 row 2: the model stopped on a generation_config stop id (Qwen's <|endoftext|>); the
    # template's own EOS must not be appended after it.
    assert splice([100, 151643], [9, 2], [9, 2, 198, 77], 2, stop_ids={151643}) == [100, 151643, 198, 77]


def test_expected_eos_count_flags_removed_turns():
    assert expected_prefix_eos_count([1, 2, 5, 2], [1, 2, 6, 2], 2) == (2, 2)
    assert expected_prefix_eos_count([1, 2, 5], [1, 2, 6, 2], 2) == (1, 1)         # truncated
    assert expected_prefix_eos_count([1, 2, 5, 2], [6, 2], 2) == (2, 1)           # history shortened
