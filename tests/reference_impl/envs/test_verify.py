"""The pure scoring rules: every ideal trajectory earns 1.0; a wrong value 0.2; a broken answer tag 0.0.

No server here: ``reference_impl.envs.tasks.verify_request`` is exactly what the ``/verify`` route runs.
"""
from __future__ import annotations

import pytest

from fixtures.tasks import TASKS as FIXTURE_TASKS
from fixtures.tasks import rows
from reference_impl.envs.errors import ApiError
from reference_impl.envs.tasks import TASKS, verify_request
from reference_impl.envs.verify import final_text, output_items, parse_answer

from ._rollouts import ideal_output, message, verify_body

ALL_VALIDATION = [(task, row) for task in FIXTURE_TASKS for row in rows(task, "validation")]


def verdict(row: dict, output: list[dict], state: dict | None = None) -> dict:
    task = "lookup" if "table" in row else "arith"
    return verify_request(TASKS[task], verify_body(row, output), state)


def with_final_text(row: dict, text: str) -> list[dict]:
    """The ideal trajectory with its last message's text replaced."""
    output = ideal_output(row)
    output[-1] = message(text, index=99)
    return output


def test_the_registry_serves_every_task_the_fixtures_generate():
    assert set(TASKS) == set(FIXTURE_TASKS)


def test_every_ideal_trajectory_earns_reward_1():
    for task, row in ALL_VALIDATION:
        fields = verdict(row, ideal_output(row), {"table": row.get("table"), "tool_calls": 1})
        assert fields["reward"] == 1.0, (task, row, fields)
        assert fields["reward_components"] == {"format": 0.2, "answer": 0.8}
        assert fields["extracted_answer"] == row["expected_answer"]


@pytest.mark.parametrize("task", FIXTURE_TASKS)
def test_a_wrong_value_in_a_well_formed_tag_earns_the_format_part_only(task):
    for row in rows(task, "validation"):
        wrong = str(int(row["expected_answer"]) + 1)
        fields = verdict(row, with_final_text(row, f"<answer>{wrong}</answer>"))
        assert fields["reward_components"] == {"format": 0.2, "answer": 0.0} and fields["reward"] == 0.2


BROKEN = {
    "no tag": "{answer}",
    "no closing tag": "<answer>{answer}",
    "no opening tag": "{answer}</answer>",
    "tags reversed": "</answer>{answer}<answer>",
    "empty tag": "<answer></answer>",
    "blank tag": "<answer>  </answer>",
    "duplicated tag": "<answer>{answer}</answer> <answer>{answer}</answer>",
    "nested tag": "<answer><answer>{answer}</answer>",
    "value on two lines": "<answer>{answer}\n{answer}</answer>",
    "markup inside": "<answer><b>{answer}</b></answer>",
    "empty text": "",
}


@pytest.mark.parametrize("case", BROKEN)
@pytest.mark.parametrize("task", FIXTURE_TASKS)
def test_a_missing_malformed_or_duplicated_tag_earns_nothing(task, case):
    row = rows(task, "validation")[0]
    fields = verdict(row, with_final_text(row, BROKEN[case].format(answer=row["expected_answer"])))
    assert fields["reward"] == 0.0 and fields["reward_components"] == {"format": 0.0, "answer": 0.0}
    assert fields["extracted_answer"] is None


def test_reward_is_the_sum_of_its_components_and_they_are_repeated_at_the_top_level():
    row = rows("arith", "validation")[0]
    for text in ("<answer>{a}</answer>", "<answer>-1</answer>", "nothing"):
        fields = verdict(row, with_final_text(row, text.format(a=row["expected_answer"])))
        assert fields["reward"] == sum(fields["reward_components"].values())
        assert all(fields[name] == value for name, value in fields["reward_components"].items())


def test_the_answer_is_read_from_the_last_assistant_message_only():
    row = rows("arith", "validation")[0]
    right = f"<answer>{row['expected_answer']}</answer>"
    reasoning = {"id": "rs_0", "type": "reasoning", "summary": [{"type": "summary_text", "text": "<answer>0</answer>"}]}
    # an earlier right answer does not rescue a wrong last one; a reasoning item after the answer is not text
    assert verdict(row, [message(right), message("<answer>-3</answer>", index=1)])["reward"] == 0.2
    assert verdict(row, [message("thinking aloud"), message(right, index=1), reasoning])["reward"] == 1.0
    assert verdict(row, [reasoning])["reward"] == 0.0  # no message at all
    assert verdict(row, [])["reward"] == 0.0
    split = message("", index=2)
    split["content"] = [{"type": "output_text", "text": "<answer>", "annotations": []},
                        {"type": "refusal", "refusal": "<answer>"},
                        {"type": "output_text", "text": f"{row['expected_answer']}</answer>", "annotations": []}]
    assert final_text([split]) == right and verdict(row, [split])["reward"] == 1.0


def test_whitespace_around_the_value_is_not_part_of_it():
    assert parse_answer("The sum: <answer> 12 </answer>.") == "12"
    assert parse_answer("<answer>\n12\n</answer>") == "12"


def test_lookup_reports_tool_use_beside_the_reward():
    row = rows("lookup", "validation")[0]
    right = f"<answer>{row['expected_answer']}</answer>"
    called = verdict(row, ideal_output(row), {"table": row["table"], "tool_calls": 1})
    assert (called["tool_calls"], called["session_tool_calls"], called["reward"]) == (1, 1, 1.0)
    guessed = verdict(row, [message(right)])  # no call and no session: the reward is the answer's alone
    assert (guessed["tool_calls"], guessed["session_tool_calls"], guessed["reward"]) == (0, None, 1.0)


@pytest.mark.parametrize("body_change, param", [
    ({"response": None}, "response"),
    ({"response": {"id": "r"}}, "response.output"),
    ({"response": {"output": {"type": "message"}}}, "response.output"),
    ({"response": {"output": ["text"]}}, "response.output[0]"),
    ({"response": {"output": [{"content": []}]}}, "response.output[0].type"),
    ({"response": {"output": [{"type": "message", "content": 3}]}}, "response.output[0].content"),
    ({"response": {"output": [{"type": "message", "content": [{"type": "output_text", "text": 7}]}]}},
     "response.output[0].content[0].text"),
    ({"response": {"output": [{"type": "function_call", "name": "lookup", "arguments": {"key": "red"}}]}},
     "response.output[0].arguments"),
    ({"expected_answer": None}, "expected_answer"),
    ({"responses_create_params": "hi"}, "responses_create_params"),
])
def test_a_bad_verify_body_is_a_422_naming_the_field(body_change, param):
    row = rows("arith", "validation")[0]
    body = {**verify_body(row, ideal_output(row)), **body_change}
    with pytest.raises(ApiError) as caught:
        verify_request(TASKS["arith"], body, None)
    assert caught.value.status == 422 and caught.value.param == param and param in caught.value.message


def test_missing_fields_are_named():
    row = rows("lookup", "validation")[0]
    for missing in ("response", "responses_create_params", "expected_answer"):
        body = verify_body(row, ideal_output(row))
        del body[missing]
        with pytest.raises(ApiError) as caught:
            verify_request(TASKS["lookup"], body, None)
        assert caught.value.param == missing and "missing" in caught.value.message


def test_unknown_item_types_pass_untouched():
    items = [{"type": "web_search_call", "id": "ws"}, {"type": "function_call_output", "call_id": "c", "output": 1}]
    assert output_items({"output": items}) == items
