"""Checkpoints: a write that fails part-way (a full disk) keeps the previous checkpoint whole and loadable."""
from __future__ import annotations

import random
import resource
import signal

import pytest
import torch
from transformers import AutoModelForCausalLM

from fixtures import fixture_path
from reference_impl.grpo import checkpoint


def _model():
    return AutoModelForCausalLM.from_pretrained(fixture_path("tiny-chatml"), dtype=torch.float32)


def test_a_checkpoint_that_cannot_be_written_leaves_the_previous_one(tmp_path):
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rng = random.Random(1)
    checkpoint.save(tmp_path, 10, model, opt, rng)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # step 20's weights differ from step 10's
    # The kernel refuses writes past RLIMIT_FSIZE (EFBIG once SIGXFSZ is ignored): a real write failure
    # part-way through the safetensors file, as a full disk gives, without needing a small filesystem.
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, hard))
    try:
        with pytest.raises(OSError, match="checkpoint at step 20 not written .*the previous one is kept"):
            checkpoint.save(tmp_path, 20, model, opt, random.Random(2))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert sorted(p.name for p in tmp_path.iterdir()) == [checkpoint.CKPT]  # no half-written folder left
    fresh, fresh_rng = _model(), random.Random(0)
    step = checkpoint.load(tmp_path, fresh, torch.optim.AdamW(fresh.parameters(), lr=1e-3), fresh_rng)
    assert step == 10 and fresh_rng.getstate() == random.Random(1).getstate()
    reference = _model()
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), reference.state_dict().values()))
