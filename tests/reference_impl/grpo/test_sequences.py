"""Sequences are the served ids, masked exactly on generated tokens; breaks are refused, never repaired."""
from __future__ import annotations

import math

import pytest

from reference_impl.grpo.sequences import ContiguityError, ServedCall, build_sequence, has_nan


def test_multi_call_rollout_concatenates_served_ids_with_generation_mask():
    c1 = ServedCall([1, 2, 3], [10, 11], [-0.5, -0.25])
    c2 = ServedCall([1, 2, 3, 10, 11, 4, 5], [12], [-1.0])  # tool turn [4, 5] added by the template
    seq = build_sequence([c1, c2])
    assert seq.ids == [1, 2, 3, 10, 11, 4, 5, 12]
    assert seq.mask == [0, 0, 0, 1, 1, 0, 0, 1]
    assert seq.old_logprobs == [0, 0, 0, -0.5, -0.25, 0, 0, -1.0]
    assert seq.generated == 3


def test_a_re_tokenized_history_is_refused_with_its_position():
    c1 = ServedCall([1, 2, 3], [10, 11], [-0.5, -0.25])
    c2 = ServedCall([1, 2, 3, 99, 4], [12], [-1.0])  # [10, 11] re-encoded as [99]
    with pytest.raises(ContiguityError, match="position 3"):
        build_sequence([c1, c2])


def test_nan_logprobs_are_detected_only_where_trained():
    seq = build_sequence([ServedCall([1], [2, 3], [-0.1, math.nan])])
    assert has_nan(seq)
    assert not has_nan(build_sequence([ServedCall([1], [2], [-0.1])]))


def test_length_mismatch_and_empty_rollouts_are_errors():
    with pytest.raises(ValueError, match="1 log probs for 2 ids"):
        build_sequence([ServedCall([1], [2, 3], [-0.1])])
    with pytest.raises(ValueError, match="nothing to train on"):
        build_sequence([])
