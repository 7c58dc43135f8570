"""The loop dumps read line by line, and every problem is one message naming the file, the line and the field."""
from __future__ import annotations

import json
import math
import tracemalloc

import pytest

from conformance.dumps import BATCHES_SCHEMA, ROLLOUTS_SCHEMA, DumpError, read_dump


def rollout(**over) -> dict:
    line = {"schema": ROLLOUTS_SCHEMA, "step": 1, "rollout_id": "1-0", "row_index": 3, "group_id": 0,
            "row": {"expected_answer": "7", "responses_create_params": {"input": [], "temperature": 1.0,
                                                                         "top_p": 1.0}},
            "reward": 1.0, "reward_components": {"format": 0.5, "value": 0.5},
            "calls": [{"prompt_token_ids": [1, 2], "generation_token_ids": [5, 6], "generation_log_probs": [-0.1, -2.0],
                       "finish_reason": "stop"}]}
    line.update(over)
    return line


def train(**over) -> dict:
    line = {"schema": BATCHES_SCHEMA, "step": 1, "rollout_id": "1-0", "row_index": 3, "input_ids": [1, 2, 5, 6],
            "loss_mask": [0, 0, 1, 1], "old_log_probs": [0, 0, -0.1, -2.0], "advantage": 0.5}
    line.update(over)
    return line


def write(path, *lines) -> str:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return str(path)


def test_good_lines_read_with_their_line_numbers(tmp_path):
    path = write(tmp_path / "r.jsonl", rollout(), "", rollout(rollout_id="1-1"))
    got = list(read_dump(path, "rollouts"))
    assert [n for n, _ in got] == [1, 3] and got[1][1].rollout_id == "1-1"
    assert got[0][1].calls[0].generation_log_probs == [-0.1, -2.0]


def test_nan_and_null_log_probs_read_as_not_finite(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(rollout()).replace("-2.0]", "NaN]") + "\n"
                    + json.dumps(rollout(calls=[{**rollout()["calls"][0], "generation_log_probs": [None, -1.0]}])) + "\n")
    (_, a), (_, b) = read_dump(path, "rollouts")
    assert math.isnan(a.calls[0].generation_log_probs[1]) and b.calls[0].generation_log_probs[0] is None


@pytest.mark.parametrize("line, message", [
    ("{not json", r"r.jsonl:2: not JSON"),
    (rollout(schema="gym-conformance/rollouts/2"),
     r"r.jsonl:2: schema 'gym-conformance/rollouts/2' is not one this version of gym-conformance reads"),
    ({k: v for k, v in rollout().items() if k != "schema"}, r"r.jsonl:2: no schema field"),
    (rollout(calls=[{"prompt_token_ids": [1], "generation_token_ids": [5, 6], "generation_log_probs": [-1.0]}]),
     r"r.jsonl:2: calls\[0\]: 1 generation_log_probs for 2 generation_token_ids"),
    (rollout(row_index="3"), r"r.jsonl:2: row_index: Input should be a valid integer"),
    (rollout(reward=None), r"r.jsonl:2: reward is null but no error says why"),
    (rollout(colour="blue"), r"r.jsonl:2: colour: Extra inputs are not permitted"),
    (rollout(calls=[{"prompt_token_ids": [-1], "generation_token_ids": [], "generation_log_probs": []}]),
     r"r.jsonl:2: calls\[0\].prompt_token_ids\[0\]: Input should be greater than or equal to 0"),
])
def test_a_bad_line_is_named_with_its_field(tmp_path, line, message):
    path = write(tmp_path / "r.jsonl", rollout(), line, rollout())
    with pytest.raises(DumpError, match=message):
        list(read_dump(path, "rollouts"))


def test_train_lines_must_align_with_their_input_ids(tmp_path):
    path = write(tmp_path / "b.jsonl", train(loss_mask=[0, 1, 1]))
    with pytest.raises(DumpError, match=r"b.jsonl:1: loss_mask has 3 entries for 4 input_ids"):
        list(read_dump(path, "batches"))
    ok = write(tmp_path / "ok.jsonl", train(advantage=[0, 0, 0.5, 0.5], trainer_log_probs=[0, 0, -0.1, -2.1]))
    assert next(read_dump(ok, "batches"))[1].advantage == [0, 0, 0.5, 0.5]


def test_empty_and_missing_files_are_problems_not_passes(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(DumpError, match=r"empty.jsonl: empty: no rollouts lines"):
        list(read_dump(tmp_path / "empty.jsonl", "rollouts"))
    with pytest.raises(DumpError, match=r"nope.jsonl: cannot read: No such file or directory"):
        list(read_dump(tmp_path / "nope.jsonl", "rollouts"))


def test_metrics_read_from_a_loop_log_or_a_csv(tmp_path):
    log = write(tmp_path / "metrics.jsonl", {"step": 0, "val_reward": 0.3},
                {"step": 1, "reward_mean": 0.5, "note": "text is ignored", "done": True})
    lines = [m.scalars() for _, m in read_dump(log, "metrics")]
    assert lines == [{"val_reward": 0.3}, {"reward_mean": 0.5}]
    csv = tmp_path / "scalars.csv"
    csv.write_text("step,reward_mean,val_reward\n1,0.5,\n2,0.6,0.7\n")
    rows = [(n, m.step, m.scalars()) for n, m in read_dump(csv, "metrics")]
    assert rows == [(2, 1, {"reward_mean": 0.5}), (3, 2, {"reward_mean": 0.6, "val_reward": 0.7})]
    bad = tmp_path / "bad.csv"
    bad.write_text("step,reward_mean\n1,high\n")
    with pytest.raises(DumpError, match=r"bad.csv:2: reward_mean: 'high' is not a number"):
        list(read_dump(bad, "metrics"))
    (tmp_path / "nostep.csv").write_text("iteration,reward\n1,0.5\n")
    with pytest.raises(DumpError, match=r"nostep.csv:1: no 'step' column \(columns: iteration, reward\)"):
        list(read_dump(tmp_path / "nostep.csv", "metrics"))


def test_a_large_dump_streams_in_flat_memory(tmp_path):
    # 5,000 rollouts of 400 ids (~15 MB): the reader holds one line at a time, not the file
    line = json.dumps(rollout(calls=[{"prompt_token_ids": list(range(200)), "generation_token_ids": list(range(200)),
                                      "generation_log_probs": [-1.5] * 200}])) + "\n"
    path = tmp_path / "big.jsonl"
    with path.open("w") as f:
        for _ in range(5_000):
            f.write(line)
    tracemalloc.start()
    count = sum(1 for _ in read_dump(path, "rollouts"))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 5_000
    assert peak < 5 * len(line) * 100, f"peak {peak} bytes for lines of {len(line)} bytes"
