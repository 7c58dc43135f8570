"""Group advantages against hand-computed values (design anchors §3.2's testable properties)."""
from __future__ import annotations

import math

import pytest

from reference_impl.grpo.advantages import group_advantages, zero_std_fraction


def test_grpo_normalises_within_each_group_not_over_the_batch():
    rewards = [1.0, 0.0, 1.0, 0.0, 0.2, 0.2, 0.2, 1.0]
    groups = ["a", "a", "a", "a", "b", "b", "b", "b"]
    adv = group_advantages(rewards, groups, estimator="grpo", eps=0.0)
    # group a: mean 0.5, population std 0.5 -> +-1
    assert adv[:4] == pytest.approx([1.0, -1.0, 1.0, -1.0])
    # group b: mean 0.4, std sqrt((3*0.04 + 0.36)/4) = sqrt(0.12)
    s = math.sqrt(0.12)
    assert adv[4:] == pytest.approx([-0.2 / s] * 3 + [0.6 / s])
    batch_mean = sum(rewards) / len(rewards)
    assert adv[0] != pytest.approx((1.0 - batch_mean) / 0.5)  # not the batch statistics


def test_dr_grpo_and_leave_one_out():
    rewards, groups = [1.0, 0.0, 0.0, 0.0], [0, 0, 0, 0]
    assert group_advantages(rewards, groups, estimator="dr_grpo") == pytest.approx([0.75, -0.25, -0.25, -0.25])
    assert group_advantages(rewards, groups, estimator="loo") == pytest.approx([1.0, -1 / 3, -1 / 3, -1 / 3])


@pytest.mark.parametrize("estimator", ["grpo", "dr_grpo", "loo"])
def test_zero_std_and_singleton_groups_get_zero(estimator):
    adv = group_advantages([0.2, 0.2, 0.2, 1.0], ["z", "z", "z", "one"], estimator=estimator)
    assert adv == [0.0, 0.0, 0.0, 0.0]
    assert zero_std_fraction([0.2, 0.2, 0.2, 1.0, 0.0], ["z", "z", "z", "m", "m"]) == 0.5


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown advantage estimator 'ppo'"):
        group_advantages([1.0], [0], estimator="ppo")
    with pytest.raises(ValueError, match="2 rewards for 1 group ids"):
        group_advantages([1.0, 0.0], [0])
