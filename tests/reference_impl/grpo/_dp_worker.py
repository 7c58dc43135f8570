"""One optimisation step of the reference loop on a fixed global batch; run alone or under torchrun.

Usage: python -m torch.distributed.run --nproc_per_node N _dp_worker.py OUT  (or plain python for N = 1).
Every rank takes its share of the same 8 sequences (rows split the way train.py splits them); rank 0 saves
the weights and the step's metrics to OUT.
"""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from fixtures import fixture_path
from reference_impl.grpo.config import Config
from reference_impl.grpo.sequences import ServedCall, build_sequence
from reference_impl.grpo.train import init_world, train_step


def main(out: Path) -> None:
    world = init_world()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(fixture_path("tiny-chatml"), dtype=torch.float32)
    # SGD, not the loop's AdamW: what DP must keep is the gradient, and SGD moves each weight by lr·g. Adam's first
    # step lr·g/(|g| + eps) turns a gradient that is float noise (k_proj's bias: softmax ignores a shift shared by
    # every key, so its true gradient is 0) into a step of up to lr whose size the summation order decides, which
    # differs between CPUs (1.3e-5 on an AMD EPYC, 5e-6 elsewhere): no tolerance then says anything about DP.
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = random.Random(3)
    seqs, adv = [], []
    for i in range(8):
        prompt = [rng.randrange(7, 900) for _ in range(rng.randrange(4, 12))]
        gen = [rng.randrange(7, 900) for _ in range(rng.randrange(1, 9))]
        seqs.append(build_sequence([ServedCall(prompt, gen, [-rng.random() * 4 for _ in gen])]))
        adv.append(rng.uniform(-1, 1))
    cfg = Config(aggregation=sys.argv[2] if len(sys.argv) > 2 else "token", lr=1e-2, warmup_steps=1, updates_per_batch=2)
    mine = list(range(8))[world.rank::world.size]
    stats = train_step(model, opt, [seqs[i] for i in mine], [adv[i] for i in mine], cfg, world, pad_id=0)
    if world.main:
        out.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), out / "weights.pt")
        moved = max((v - before[k]).abs().max().item() for k, v in model.state_dict().items())
        (out / "stats.json").write_text(json.dumps({**stats, "max_weight_change": moved}))
    if world.size > 1:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
