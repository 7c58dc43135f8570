"""The run's hyper-parameters: a value out of range is named before anything starts."""
from __future__ import annotations

import pytest

from reference_impl.grpo.config import Config, load


@pytest.mark.parametrize("field, value, needle", [
    ("group_size", 1, "group_size must be at least 2"),
    ("updates_per_batch", 0, "updates_per_batch must be at least 1"),
    ("advantage", "ppo", "advantage must be one of grpo, dr_grpo, loo"),
    ("aggregation", "bnpo", "aggregation must be one of token, sequence"),
    ("lr", 0.0, "lr must be > 0"),
    ("val_every", -1, "val_every must be at least 0"),  # 0: no validation (the loop zoo's rows)
])
def test_out_of_range_values_are_named(field, value, needle):
    with pytest.raises(ValueError, match=needle):
        Config(**{field: value}).check()


def test_defaults_pass_and_a_file_overrides_them(tmp_path):
    Config().check()
    path = tmp_path / "c.toml"
    path.write_text('lr = 5e-4\nupdates_per_batch = 2\n')
    cfg = load(path)
    assert (cfg.lr, cfg.updates_per_batch, cfg.task) == (5e-4, 2, "arith")
    assert cfg.hash != Config().hash and cfg.with_overrides(steps=7).hash == cfg.hash  # steps are not the recipe


def test_a_task_brings_its_defaults_and_the_file_still_wins(tmp_path):
    assert Config.for_task("lookup").max_tokens == 48 and Config.for_task("lookup").val_samples == 2
    assert Config.for_task("arith") == Config(val_samples=4)
    path = tmp_path / "c.json"
    path.write_text('{"task": "lookup", "lr": 1e-4}')
    assert load(path).max_tokens == 48
    path.write_text('{"task": "lookup", "max_tokens": 40}')
    assert load(path).max_tokens == 40
