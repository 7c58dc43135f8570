"""Every loop check passes on the reference loop's own dumps and fails on a dump carrying the defect it targets.

The known-good input is a real reference run (``fixtures/dumps/lookup``: 2 steps of the multi-turn lookup task,
tool calls, served through the on-policy correction). Each defect below rewrites those dumps the way the bug
shows up in a real loop's dumps; the loop mutant zoo (the reference loop itself with one defect each) is the
end-to-end proof on top of this.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from conformance.checks.loop import LOOP_CHECKS, LoopSettings, judge
from conformance.checks.loop._expected import expected_advantages
from conformance.core import CheckFailure, CheckSkipped
from conformance.dumps import DumpError

DUMPS = Path(__file__).resolve().parents[4] / "fixtures" / "dumps" / "lookup"


def load() -> tuple[list[dict], list[dict]]:
    return ([json.loads(x) for x in (DUMPS / "rollouts.jsonl").read_text().splitlines()],
            [json.loads(x) for x in (DUMPS / "train_batches.jsonl").read_text().splitlines()])


def run(tmp_path, rollouts, trains, **settings) -> dict:
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rollouts))
    batches = None
    if trains is not None:
        batches = tmp_path / "b.jsonl"
        batches.write_text("".join(json.dumps(x) + "\n" for x in trains))
    return judge(LoopSettings(tmp_path / "r.jsonl", batches, **settings))


def failing(outcomes: dict) -> dict[str, CheckFailure]:
    return {k: v for k, v in outcomes.items() if isinstance(v, CheckFailure)}


def train_of(trains, rollout) -> dict:
    return next(t for t in trains if t["rollout_id"] == rollout["rollout_id"])


def generated(t) -> list[int]:
    return [i for i, m in enumerate(t["loss_mask"]) if m]


# -- defects as they appear in a loop's dumps: (name, rewrite, checks that must fail, words in the verdict) ---

def retokenized_training_input(rs, ts):
    t = ts[0]
    i = generated(t)[3]
    for key in ("input_ids", "loss_mask", "old_log_probs", "trainer_log_probs"):
        del t[key][i]  # two generated ids merged into one by decode + encode
    t["input_ids"][i - 1] += 1


def mask_covers_tool_output(rs, ts):
    t = ts[0]
    first, last = generated(t)[0], generated(t)[-1]
    for i in range(first, last):
        t["loss_mask"][i] = 1  # the tool output between the two calls is trained as if generated


def recomputed_old_logprobs(rs, ts):
    for t in ts:
        t["old_log_probs"] = list(t["trainer_log_probs"])


def batch_normalised_advantages(rs, ts):
    by_id = {r["rollout_id"]: r for r in rs}
    for step in {t["step"] for t in ts}:
        mine = [t for t in ts if t["step"] == step]
        rewards = [by_id[t["rollout_id"]]["reward"] for t in mine]
        mean = sum(rewards) / len(rewards)
        std = (sum((r - mean) ** 2 for r in rewards) / len(rewards)) ** 0.5
        for t, r in zip(mine, rewards):
            t["advantage"] = (r - mean) / (std + 1e-6)


def rewards_shifted_after_shuffle(rs, ts):
    # results matched to rows by arrival order: each rollout is filed under the next rollout's row
    step = [r for r in rs if r["step"] == 1]
    rows = [(r["row"], r["row_index"]) for r in step]
    for r, (row, index) in zip(step, rows[1:] + rows[:1]):
        r["row"], r["row_index"] = row, index
    for t in ts:
        t["row_index"] = next(r["row_index"] for r in rs if r["rollout_id"] == t["rollout_id"])


def drift_becomes_zero_reward(rs, ts):
    r = rs[0]
    r["calls"][1]["prompt_token_ids"][len(r["calls"][0]["prompt_token_ids"]) + 1] += 1  # re-tokenized history
    t = train_of(ts, r)
    t["loss_mask"] = [0] * len(t["loss_mask"])  # ... turned into a silent, fully masked dummy


def prefix_repaired_silently(rs, ts):
    r = rs[0]
    r["calls"][1]["prompt_token_ids"][len(r["calls"][0]["prompt_token_ids"]) + 1] += 1  # the break stays unflagged


def nan_logprobs_trained(rs, ts):
    r = rs[0]
    r["calls"][0]["generation_log_probs"][2] = None
    t = train_of(ts, r)
    t["old_log_probs"][generated(t)[2]] = None


def truncation_trained_as_complete(rs, ts):
    r = rs[0]
    r["calls"][-1]["finish_reason"], r["truncated"] = "length", True
    t = train_of(ts, r)
    t["input_ids"].append(2)  # an end-of-turn id appended after the cut
    for key, value in (("loss_mask", 1), ("old_log_probs", 0.0), ("trainer_log_probs", -0.1)):
        t[key].append(value)
    if isinstance(t["advantage"], list):
        t["advantage"].append(t["advantage"][-1])


def sampling_not_stamped(rs, ts):
    for r in rs:
        del r["row"]["responses_create_params"]["temperature"]


def stop_strings_sent(rs, ts):
    rs[3]["row"]["responses_create_params"]["stop"] = ["</answer>"]


def no_refit_versions(rs, ts):
    for r in rs:
        if r["step"] == 2:
            for c in r["calls"]:
                c["weight_version"] = 1  # the server still serves step 1's weights


def no_refit_logprobs(rs, ts):
    for t in ts:
        if t["step"] == 2:  # the trainer moved on; the server did not
            t["trainer_log_probs"] = [x - 0.3 if m else x for x, m in zip(t["trainer_log_probs"], t["loss_mask"])]


def reward_not_its_components(rs, ts):
    rs[1]["reward_components"] = {"format": 0.2, "answer": 1.0}


def rollout_lost(rs, ts):
    lost = train_of(ts, rs[5])
    ts.remove(lost)  # lost before the advantages: the rest of its group is normalised without it
    group = [(t, r) for t in ts for r in rs if r["rollout_id"] == t["rollout_id"] and r["group_id"] == rs[5]["group_id"]]
    for (t, _), a in zip(group, expected_advantages([r["reward"] for _, r in group], [0] * len(group), "grpo")):
        t["advantage"] = a


DEFECTS = [
    ("retokenized-training-input", retokenized_training_input, {"L1"}, "re-tokenized"),
    ("mask-covers-tool-output", mask_covers_tool_output, {"R4"}, "prompt or environment token"),
    ("recomputed-old-logprobs", recomputed_old_logprobs, {"R11"}, "recomputed, not served"),
    ("batch-normalised-advantages", batch_normalised_advantages, {"L2"}, "normalised over the whole batch"),
    ("rewards-shifted-after-shuffle", rewards_shifted_after_shuffle, {"R6"}, "mixes rows"),
    ("drift-becomes-zero-reward", drift_becomes_zero_reward, {"R2", "R3"}, "not flagged"),
    ("prefix-repaired-silently", prefix_repaired_silently, {"R3"}, "trained on"),
    ("nan-logprobs-trained", nan_logprobs_trained, {"R12"}, "not finite"),
    ("truncation-trained-as-complete", truncation_trained_as_complete, {"R9", "L1"}, "trained as if complete"),
    ("sampling-not-stamped", sampling_not_stamped, {"R5"}, "temperature not stamped"),
    ("stop-strings-sent", stop_strings_sent, {"R5"}, "sets stop"),
    ("no-refit-versions", no_refit_versions, {"R8"}, "refit did not reach the server"),
    ("no-refit-logprobs", no_refit_logprobs, {"R8", "R14"}, "stale weights"),
    ("reward-not-its-components", reward_not_its_components, {"R1"}, "not the sum of its components"),
    ("rollout-lost", rollout_lost, {"R2"}, "lost silently"),
]


def test_the_reference_loops_dumps_pass_every_loop_check(tmp_path):
    rs, ts = load()
    outcomes = run(tmp_path, rs, ts)
    assert set(outcomes) == set(LOOP_CHECKS)
    assert {k: str(v) for k, v in outcomes.items() if v is not None} == {}


@pytest.mark.parametrize("name, defect, must_fail, words", DEFECTS, ids=[d[0] for d in DEFECTS])
def test_each_defect_fails_exactly_its_checks(tmp_path, name, defect, must_fail, words):
    rs, ts = load()
    defect(rs, ts)
    failed = failing(run(tmp_path, rs, ts))
    assert set(failed) == must_fail, {k: str(v) for k, v in failed.items()}
    assert any(words in f.verdict for f in failed.values()), [f.verdict for f in failed.values()]
    for failure in failed.values():
        assert failure.evidence.endpoint.startswith(str(tmp_path))  # names the file (and line) it read


def test_every_loop_check_is_killed_by_some_defect():
    killed = set().union(*(d[2] for d in DEFECTS))
    assert killed == set(LOOP_CHECKS), set(LOOP_CHECKS) - killed


def test_two_rows_may_share_a_prompt(tmp_path):
    # lookup's rows ask for the same key of different tables: same prompt ids, different tasks (found by CI: an
    # R6 rule "one prompt, one row" failed the reference loop's own run)
    rs, _ = load()
    a, b = rs[0], next(r for r in rs if r["row_index"] != rs[0]["row_index"])
    for r in rs:
        if r["row_index"] == b["row_index"]:
            r["calls"][0]["prompt_token_ids"] = list(a["calls"][0]["prompt_token_ids"])
    assert run(tmp_path, rs, None)["R6"] is None


def test_a_recompute_is_caught_even_when_it_is_numerically_close(tmp_path):
    rs, ts = load()
    for t in ts:  # a trainer whose recompute agrees with the server to 2e-5: still not the served values
        t["trainer_log_probs"] = [x + 2e-5 if x is not None else x for x in t["old_log_probs"]]
        t["old_log_probs"] = list(t["trainer_log_probs"])
    failed = failing(run(tmp_path, rs, ts))
    assert set(failed) == {"R11"} and "recomputed" in failed["R11"].verdict


def test_the_first_violation_is_shown_and_the_rest_counted(tmp_path):
    rs, ts = load()
    recomputed_old_logprobs(rs, ts)
    failure = failing(run(tmp_path, rs, ts))["R11"]
    assert failure.evidence.endpoint.endswith("b.jsonl:1")
    assert f"{len(ts)} train lines violate this in all" in " ".join(failure.evidence.notes)


def test_declared_settings_change_the_verdict(tmp_path):
    rs, ts = load()
    failed = failing(run(tmp_path, rs, ts, advantage="dr_grpo"))
    assert set(failed) == {"L2"} and "declared dr_grpo estimator" in failed["L2"].verdict
    truncation_trained_as_complete(rs, ts)
    failed = failing(run(tmp_path, rs, ts, truncation="drop"))
    assert "R9" in failed and "drops truncated responses" in failed["R9"].verdict


def test_without_train_batches_the_training_checks_say_what_they_need(tmp_path):
    rs, _ = load()
    outcomes = run(tmp_path, rs, None)
    skipped = {k for k, v in outcomes.items() if isinstance(v, CheckSkipped)}
    assert skipped == {"L1", "L2", "R4", "R11", "R14", "R8"}
    assert all("--train-batches" in str(outcomes[k]) for k in skipped)
    assert not failing(outcomes)


def test_lines_out_of_step_order_are_a_dump_error(tmp_path):
    rs, ts = load()
    rs.reverse()
    with pytest.raises(DumpError, match=r"r.jsonl:\d+: step 1 after step 2: lines must be in step order"):
        run(tmp_path, rs, ts)


def test_an_unknown_setting_is_named():
    with pytest.raises(ValueError, match="unknown advantage estimator 'ppo'"):
        LoopSettings(Path("r.jsonl"), advantage="ppo")


def test_defects_do_not_leak_between_cases():
    rs, ts = load()
    before = copy.deepcopy((rs, ts))
    assert load() == before
