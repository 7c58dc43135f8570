"""The loop's server processes: the per-step token budget its vLLM servers get (reference_impl/grpo/servers.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from fixtures import fixture_path, tasks
from reference_impl.grpo import servers
from reference_impl.grpo.config import Config
from reference_impl.grpo.rollout import chat_messages, chat_tools


@pytest.mark.parametrize("task", tasks.TASKS)
def test_a_steps_first_calls_fit_one_engine_step(task):
    # Seeded calls run together only while prompt + max_tokens of all in flight fit the budget; the default
    # recipe's whole first wave must, or rollouts queue in several waves again.
    from transformers import AutoTokenizer

    cfg = Config.for_task(task)
    tokenizer = AutoTokenizer.from_pretrained(fixture_path(f"warm-{task}"))
    longest = 0
    for row in tasks.rows(task, "train"):
        params = row["responses_create_params"]
        ids = tokenizer.apply_chat_template(chat_messages(params["input"]), tools=chat_tools(params.get("tools")),
                                            add_generation_prompt=True, tokenize=True, return_dict=False)
        longest = max(longest, len(ids))
    in_flight = min(cfg.concurrency, cfg.rows_per_step * cfg.group_size)
    assert in_flight * (longest + cfg.max_tokens) <= servers.STEP_TOKEN_BUDGET


def test_the_budget_goes_to_vllm_only(tmp_path: Path):
    vllm = servers.reference_server(tmp_path, "vllm", tmp_path / "log", weights_root=tmp_path).argv
    hf = servers.reference_server(tmp_path, "hf", tmp_path / "log", weights_root=tmp_path).argv
    assert vllm[vllm.index("--") + 1:] == ["--max-num-batched-tokens", str(servers.STEP_TOKEN_BUDGET)]
    assert "--" not in hf
