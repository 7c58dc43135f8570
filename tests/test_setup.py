"""scripts/setup-env.sh refuses bad environments with one line that says what to do, and exits 2."""
from pathlib import Path

import pytest

from conformance._process import Finished, run_command

SETUP = Path(__file__).resolve().parents[1] / "scripts" / "setup-env.sh"


def run_setup(tmp_path: Path, **env: str) -> Finished:
    return run_command(["bash", str(SETUP)], env={"GYM_CONFORMANCE_VENV": str(tmp_path / "venv"), **env},
                       capture=True, timeout=120)


def test_missing_python_is_named(tmp_path):
    result = run_setup(tmp_path, GYM_CONFORMANCE_PYTHON=str(tmp_path / "no-such-python"))
    assert result.returncode == 2
    assert "Python 3.11 not found" in result.stderr and "GYM_CONFORMANCE_PYTHON" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_wrong_python_version_is_named(tmp_path):
    fake = tmp_path / "python3.12"
    fake.write_text("#!/bin/sh\necho 3.12\n")
    fake.chmod(0o755)
    result = run_setup(tmp_path, GYM_CONFORMANCE_PYTHON=str(fake))
    assert result.returncode == 2
    assert "is Python 3.12" in result.stderr and "needs Python 3.11" in result.stderr
    assert not (tmp_path / "venv").exists()


@pytest.mark.slow
def test_missing_cpu_torch_wheel_stops_before_installing_anything(tmp_path):
    result = run_setup(tmp_path, PIP_FIND_LINKS=str(tmp_path / "empty-wheel-dir"))
    assert result.returncode == 2, result.stderr
    assert "no CPU wheel for torch==2.13.0" in result.stderr and "PIP_FIND_LINKS" in result.stderr
    site = list((tmp_path / "venv").glob("lib/python3.11/site-packages/torch"))
    assert site == [], "setup must stop before pip pulls a (CUDA) torch"


@pytest.mark.setup_env
def test_up_to_date_environment_is_a_fast_no_op():
    # The repository's own .venv was made by this script; a second run must not reinstall anything.
    result = run_command(["bash", str(SETUP)], capture=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
