"""``python -m reference_impl.envs`` and ``gym-conformance env``: the data command, and bad input as one line.

``serve`` itself runs in every HTTP test (``conftest`` starts the servers with it).
"""
from __future__ import annotations

import json
import sys

import pytest

from conformance._process import run_command
from fixtures.tasks import rows
from gym_conformance.cli import main as gym_conformance
from reference_impl.envs.cli import main


def exit_code(fn, argv) -> int:
    try:
        return fn(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("task", ["arith", "lookup"])
def test_data_writes_the_fixture_rows_as_jsonl(task, tmp_path, capsys):
    assert main(["data", "--task", task, "--out", str(tmp_path / "out"), "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    for split in ("train", "validation"):
        path = tmp_path / "out" / f"{task}_{split}.jsonl"
        assert f"{split}: {path}" in printed
        written = [json.loads(line) for line in path.read_text().splitlines()]
        assert written == rows(task, split, seed=3)
    assert not list((tmp_path / "out").glob("*.tmp"))


@pytest.mark.parametrize("argv, says", [
    (["serve", "--task", "chess"], "invalid choice: 'chess'"),
    (["data", "--task", "chess", "--out", "x"], "invalid choice: 'chess'"),
    (["data", "--task", "arith"], "required: --out"),
    (["serve"], "required: --task"),
    ([], "required: ACTION"),
])
def test_bad_input_is_one_line_on_stderr_and_exit_2(argv, says, capsys):
    assert exit_code(main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err


def test_an_unwritable_out_directory_is_one_line_and_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["data", "--task", "arith", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0]


def test_the_module_runs_as_a_program():
    done = run_command([sys.executable, "-m", "reference_impl.envs", "serve", "--task", "chess"], capture=True,
                       timeout=60)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "invalid choice: 'chess'" in done.stderr


def test_gym_conformance_env_is_the_same_command(tmp_path, capsys):
    assert gym_conformance(["env", "data", "--task", "lookup", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "lookup_validation.jsonl").is_file()
    capsys.readouterr()
    assert exit_code(gym_conformance, ["env", "serve", "--task", "chess"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gym-conformance env serve: error:") and "'chess'" in err[0]
