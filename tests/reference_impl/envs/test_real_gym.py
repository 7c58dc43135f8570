"""The environments meet the real NeMo Gym 0.7.0: its own simple agent trains-style rollouts against them.

``scripts/gym_env_probe.py`` runs in the Gym side environment (``.venv-gym/0.7.0``, Python 3.12) with Gym's
``SimpleAgent`` app, ``ServerClient`` and aiohttp transport, a scripted perfect policy behind Gym's
Responses-API route, and our two environment servers (child processes here) as the agents' resources
servers. What a framework's Gym integration does per row -- ``POST /run`` on the agent -- is what the probe
does, for every validation row at once; Gym's own pydantic models validate the rows and every answer.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance._process import run_command
from fixtures.tasks import TASKS, rows, tool_output
from reference_impl.envs.sessions import cookie_name

REPO = Path(__file__).resolve().parents[3]
GYM_PYTHON = REPO / ".venv-gym" / "0.7.0" / "bin" / "python"
PROBE = REPO / "scripts" / "gym_env_probe.py"
GYM_MODELS = {"BaseVerifyResponse", "SimpleAgentVerifyResponse", "BaseMultiRewardVerifyResponse"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def probe(arith_env, lookup_env, tmp_path_factory) -> tuple[list[dict], dict]:
    if not GYM_PYTHON.is_file():
        pytest.skip(f"the real NeMo Gym 0.7.0 side environment is not built ({GYM_PYTHON.parent.parent} is "
                    "missing): `make gym-env` (scripts/setup-gym-env.sh) builds it")
    validation = [row for task in TASKS for row in rows(task, "validation")]
    rows_file = tmp_path_factory.mktemp("gym-env-probe") / "rows.jsonl"
    rows_file.write_text("".join(json.dumps(row) + "\n" for row in validation))
    envs = ["--env", f"arith={arith_env}", "--env", f"lookup={lookup_env}"]
    done = run_command([str(GYM_PYTHON), str(PROBE), *envs, "--rows", str(rows_file)], cwd=REPO, capture=True,
                       timeout=180)
    assert done.returncode == 0, f"the probe failed (exit {done.returncode}):\n{done.stderr[-4000:]}"
    return validation, json.loads(done.stdout)


def test_gym_validates_every_row_and_its_agent_earns_reward_1_on_each(probe):
    validation, report = probe
    assert report["gym_version"] == "0.7.0" and report["rows_validated"] == len(validation)
    assert len(report["rollouts"]) == len(validation)
    for row, rollout in zip(validation, report["rollouts"]):
        assert rollout["agent"] == row["agent_ref"]["name"]
        assert rollout["reward"] == 1.0 and rollout["reward_components"] == {"format": 0.2, "answer": 0.8}, rollout
        assert rollout["echoed"] and set(rollout["models"]) == GYM_MODELS, rollout


def test_the_tool_body_reaches_gyms_model_unchanged_within_the_rollouts_session(probe):
    validation, report = probe
    for row, rollout in zip(validation, report["rollouts"]):
        if "table" not in row:
            assert rollout["output_types"] == ["message"] and rollout["tool_outputs_seen"] == []
            continue
        assert rollout["output_types"] == ["function_call", "function_call_output", "message"], rollout
        # byte for byte what fixtures.tasks says, from this row's own table: concurrent sessions did not mix
        assert rollout["tool_outputs_seen"] == [tool_output(row["table"][row["key"]])], rollout
        # the seed's cookie travelled through Gym's agent to the tool call and to /verify
        assert rollout["tool_calls"] == 1 and rollout["session_tool_calls"] == 1, rollout


def test_a_wrong_value_through_gyms_agent_earns_the_format_part_only(probe):
    _, report = probe
    assert [r["agent"] for r in report["wrong"]] == [f"{task}_simple_agent" for task in TASKS]
    for rollout in report["wrong"]:
        assert rollout["reward"] == 0.2 and rollout["reward_components"] == {"format": 0.2, "answer": 0.0}, rollout


def test_the_pieces_by_hand_with_gyms_transport_and_request_models(probe):
    validation, report = probe
    for task, piece in zip(TASKS, report["direct"]):
        row = next(r for r in validation if r["agent_ref"]["name"] == f"{task}_simple_agent")
        assert piece["cookies"] == [cookie_name(task)] and piece["reward"] == 1.0, piece
        assert set(piece["models"]) == GYM_MODELS
        if task == "lookup":
            assert piece["tool_bodies"] == [tool_output(row["table"][row["key"]])]
            assert piece["session_tool_calls"] == 1


def test_gyms_agent_gets_aggregate_metrics_from_the_environment(probe):
    _, report = probe
    for task in TASKS:
        metrics = report["metrics"][f"{task}_simple_agent"]
        expected = {"mean/answer": 0.8, "mean/format": 0.2, "mean/reward": 1.0}
        assert metrics["key_metrics"] == pytest.approx(expected), metrics
        assert metrics["agent_metrics"]["count"] == len(rows(task, "validation"))
