"""TRL's GRPOTrainer beside the reference GRPO loop on ``arith``, in one run: seconds per step and validation reward.

    .venv/bin/python benchmarks/bench_grpo_vs_trl.py [--steps 200] [--seed 0] [--out reports/bench-grpo-vs-trl]

Same starting policy (the ``warm-arith`` fixture), same training rows and prompts (the rows' chat messages
rendered by the policy's own chat template), same prompts × generations per step (8 × 8), same sampling
(temperature 1.0, top_p 1.0, 24 new tokens), same reward (``reference_impl.envs.verify``: format 0.2 + answer
0.8), same objective as far as TRL names it: token-level aggregation (``loss_type="dapo"``), group-normalised
advantages (``scale_rewards="group"``), clip 0.2, no KL, AdamW at the reference recipe's learning rate with
the same linear warm-up and gradient clip, one update per batch.

What differs is the architecture: the reference loop samples through the reference server (vLLM engine, on-policy
correction, Gym-like HTTP rollouts against the environment server) and refits it every step; TRL samples
in-process with ``model.generate`` and computes the reward in-process. Validation is the same for both: the 64
validation rows, ``val_samples`` samples each at the training sampling, scored by the same verifier (the reference through
its environment server, TRL's by calling the verifier). Seconds per step exclude validation.

Writes ``result.json`` and ``curves.png`` under ``--out`` and prints the README table.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_grpo_curves import reward_figure  # noqa: E402
from fixtures import fixture_path, tasks  # noqa: E402
from reference_impl.envs.verify import reward_components  # noqa: E402
from reference_impl.grpo import servers  # noqa: E402
from reference_impl.grpo.config import Config  # noqa: E402
from reference_impl.grpo.rollout import chat_messages  # noqa: E402
from reference_impl.grpo.train import train  # noqa: E402

MARKS = (50, 100, 150, 200)


def run_reference(cfg: Config, work: Path) -> dict:
    with ExitStack() as stack:
        urls, env = servers.start(stack, fixture_path("warm-arith"), task="arith", engine=cfg.engine, endpoints=1,
                                  logs=work / "reference-logs")
        start = time.perf_counter()
        log = train(cfg, work / "reference", model_urls=urls, env_url=env)
        wall = time.perf_counter() - start
    steps = [r for r in log if "step_s" in r and r.get("val_reward") is None]
    return {"step_s": statistics.mean(r["step_s"] for r in steps), "wall_s": wall,
            "val": {r["step"]: r["val_reward"] for r in log if r.get("val_reward") is not None}}


def _reward(text: str, expected: str) -> float:
    return sum(reward_components(text, expected).values())


def run_trl(cfg: Config, work: Path) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    policy = fixture_path("warm-arith")
    tokenizer = AutoTokenizer.from_pretrained(policy)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(policy, dtype=torch.float32)
    train_rows, val_rows = tasks.rows("arith", "train"), tasks.rows("arith", "validation")

    def as_dataset(rows):
        return Dataset.from_list([{"prompt": chat_messages(r["responses_create_params"]["input"]),
                                   "expected_answer": r["expected_answer"]} for r in rows])

    def reward(completions, expected_answer, **_):
        return [_reward(c[-1]["content"], e) for c, e in zip(completions, expected_answer)]

    class Measure(TrainerCallback):
        """Validation at step 0 and every ``val_every`` steps; wall time of every training step."""

        def __init__(self):
            self.val, self.step_s, self._t = {}, [], 0.0

        def validate(self, step: int, net) -> None:
            rows = [r for r in val_rows for _ in range(cfg.val_samples)]
            texts = [tokenizer.apply_chat_template(chat_messages(r["responses_create_params"]["input"]),
                                                   add_generation_prompt=True, tokenize=False) for r in rows]
            batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            torch.manual_seed(cfg.seed * 1000 + step)
            with torch.no_grad():
                out = net.generate(**batch, do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p, top_k=0,
                                   max_new_tokens=cfg.max_tokens, pad_token_id=tokenizer.pad_token_id)
            answers = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
            self.val[step] = statistics.mean(_reward(a, r["expected_answer"]) for a, r in zip(answers, rows))

        def on_train_begin(self, args, state, control, model=None, **kw):
            self.validate(0, model)

        def on_step_begin(self, args, state, control, **kw):
            self._t = time.perf_counter()

        def on_step_end(self, args, state, control, model=None, **kw):
            self.step_s.append(time.perf_counter() - self._t)
            if state.global_step % cfg.val_every == 0 or state.global_step == cfg.steps:
                was_training = model.training
                model.eval()
                self.validate(state.global_step, model)
                model.train(was_training)

    args = GRPOConfig(
        output_dir=str(work / "trl"), max_steps=cfg.steps, seed=cfg.seed, use_cpu=True, report_to="none",
        save_strategy="no", logging_steps=cfg.val_every, disable_dropout=True,
        per_device_train_batch_size=cfg.rows_per_step * cfg.group_size, num_generations=cfg.group_size,
        gradient_accumulation_steps=1, num_iterations=cfg.updates_per_batch,
        max_completion_length=cfg.max_tokens, temperature=cfg.temperature, top_p=cfg.top_p, top_k=0,
        loss_type="dapo", scale_rewards="group", epsilon=cfg.clip_low, epsilon_high=cfg.clip_high, beta=cfg.kl_coef,
        learning_rate=cfg.lr, lr_scheduler_type="constant_with_warmup", warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay, max_grad_norm=cfg.grad_clip, optim="adamw_torch")
    measure = Measure()
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=as_dataset(train_rows),
                          processing_class=tokenizer, callbacks=[measure])
    start = time.perf_counter()
    trainer.train()
    return {"step_s": statistics.mean(measure.step_s), "wall_s": time.perf_counter() - start, "val": measure.val}


def plot(result: dict, path: Path) -> None:
    with reward_figure(path, ylabel="validation reward", title="arith: reference GRPO loop vs TRL GRPOTrainer") as ax:
        for name in ("reference", "trl"):
            val = sorted((int(k), v) for k, v in result[name]["val"].items())
            ax.plot([s for s, _ in val], [v for _, v in val], "o-", ms=3,
                    label=f"{name} ({result[name]['step_s']:.2f} s/step)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("reports/bench-grpo-vs-trl"))
    ap.add_argument("--only", choices=("reference", "trl"), help="run one side (for debugging the harness)")
    args = ap.parse_args()
    cfg = Config.for_task("arith").with_overrides(steps=args.steps, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"steps": args.steps, "seed": args.seed, "config_hash": cfg.hash}
    with tempfile.TemporaryDirectory(prefix="grpo-vs-trl-") as tmp:
        for name, run in (("reference", run_reference), ("trl", run_trl)):
            if args.only in (None, name):
                result[name] = run(cfg, Path(tmp))
                print(f"{name}: {result[name]['step_s']:.2f} s/step, validation {result[name]['val']}", flush=True)
    (args.out / "result.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    if args.only:
        return 0
    plot(result, args.out / "curves.png")
    ref, trl = result["reference"], result["trl"]
    print("\n| loop | s/step | " + " | ".join(f"val@{m}" for m in (0, *MARKS) if m <= args.steps) + " |")
    print("|---|---|" + "---|" * len([m for m in (0, *MARKS) if m <= args.steps]))
    for name, r in (("reference", ref), ("TRL GRPOTrainer", trl)):
        vals = " | ".join(f"{r['val'].get(m, float('nan')):.3f}" for m in (0, *MARKS) if m <= args.steps)
        print(f"| {name} | {r['step_s']:.2f} | {vals} |")
    print(f"\nreference / TRL seconds per step: {ref['step_s'] / trl['step_s']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
