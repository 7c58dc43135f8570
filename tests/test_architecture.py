"""The rules of ARCHITECTURE.md, enforced: import contracts, one module for child processes, shipped names.

- The dependency rules are import-linter contracts in pyproject.toml (``[tool.importlinter]``); they hold
  for this tree, and a copy of the tree with one forbidden import added breaks the contract meant to catch
  it, and no other but those that see the import through a chain (so a contract that checks nothing cannot
  pass unnoticed).
- Child processes are spawned only by ``conformance/_process.py``.
- The wheel's top-level import packages are the documented list.
"""
from __future__ import annotations

import ast
import re
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

from conformance._process import Finished, run_command

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"
CONFIG = tomllib.loads(PYPROJECT.read_text())
PACKAGES = CONFIG["tool"]["importlinter"]["root_packages"]
CONTRACTS = {c["id"]: c["name"] for c in CONFIG["tool"]["importlinter"]["contracts"]}
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint(tree: Path) -> tuple[Finished, dict[str, str]]:
    """Run lint-imports with this repository's contracts over the packages found in ``tree``.

    lint-imports puts its working directory first on sys.path, so the packages in ``tree`` are the ones
    analysed (not the installed ones). Returns the run and each contract's verdict (KEPT / BROKEN) by id.
    """
    done = run_command([sys.executable, "-c", LINT, str(PYPROJECT), "--no-cache", "--no-logo"], cwd=tree,
                       env={"COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"}, capture=True, timeout=120)
    verdicts = {}
    for cid, name in CONTRACTS.items():
        found = re.search(re.escape(name) + r"\s+(KEPT|BROKEN)", done.stdout)
        assert found, f"no verdict for contract {cid!r} in:\n{done.stdout}\n{done.stderr}"
        verdicts[cid] = found.group(1)
    return done, verdicts


def test_the_contracts_hold():
    done, verdicts = lint(REPO)
    assert done.returncode == 0 and set(verdicts.values()) == {"KEPT"}, done.stdout + done.stderr


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the four packages, to break on purpose."""
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


# (file to edit, line appended to it, the contracts that must break: the one meant to catch it, and any other
# that sees the new import indirectly)
VIOLATIONS = [
    ("conformance/core/_splice.py", "import reference_impl", "harness-alone"),
    ("conformance/checks/_registry.py", "from fixtures import fixture_path", "harness-alone"),
    ("conformance/core/_tokendiff.py", "from ..client import Bundle", "harness-layers report-on-core"),
    ("conformance/client/_http.py", "from ..checks import CHECKS", "harness-layers"),
    ("conformance/layer_nobody_declared.py", "X = 1", "harness-layers"),  # exhaustive: every module has a layer
    ("conformance/report/model.py", "from ..checks import CHECKS", "report-on-core"),
    ("reference_impl/server/service.py", "import httpx", "server-pure"),
    ("reference_impl/server/correction.py", "from .engines.hf import HFEngine", "server-pure"),
    ("reference_impl/server/rendering.py", "from .app import create_app", "server-pure"),
    ("reference_impl/server/service.py", "from conformance.core import splice", "server-alone"),
    ("reference_impl/server/cli.py", "from conformance._process import free_port", ""),  # the one exception
    ("reference_impl/server/engines/hf.py", "import gym_conformance", "server-alone"),
    ("reference_impl/mutants/host.py", "import conformance.checks", "mutants-alone"),
    ("fixtures/golden.py", "from conformance import core", "fixtures-alone"),
    ("reference_impl/envs/verify.py", "import conformance", "envs-alone"),
    ("reference_impl/envs/app.py", "from reference_impl.server.protocol import ApiError", "envs-alone"),
    ("reference_impl/envs/tasks.py", "import reference_impl.mutants", "envs-alone"),
    ("reference_impl/envs/sessions.py", "import reference_impl.grpo", "envs-alone"),
    ("reference_impl/envs/cli.py", "import gym_conformance.cli", "envs-alone"),
    ("reference_impl/grpo/loss.py", "from conformance.core import splice", "grpo-alone"),
    ("reference_impl/grpo/rollout.py", "from reference_impl.server.splice import splice", "grpo-alone"),
    ("reference_impl/grpo/advantages.py", "import reference_impl.envs.verify", "grpo-alone"),
    ("reference_impl/grpo/sequences.py", "import reference_impl.mutants", "grpo-alone"),
    ("reference_impl/grpo/train.py", "import reference_impl.loop_mutants", "grpo-alone"),
    ("reference_impl/loop_mutants/_drift.py", "from conformance.checks.loop import judge", "loop-mutants-alone"),
    ("reference_impl/loop_mutants/defects/no_refit.py", "import reference_impl.server.splice", "loop-mutants-alone"),
    ("reference_impl/envs/errors.py", "from fixtures.tasks import rows", ""),  # the fixtures are allowed
]


@pytest.mark.parametrize("path, line, broken", VIOLATIONS, ids=[f"{b or 'none'}:{p}" for p, _, b in VIOLATIONS])
def test_a_forbidden_import_breaks_its_contract(tree, path, line, broken):
    target = tree / path
    target.write_text((target.read_text() if target.exists() else "") + f"\n{line}\n")
    done, verdicts = lint(tree)
    assert {cid for cid, v in verdicts.items() if v == "BROKEN"} == set(broken.split()), done.stdout
    assert done.returncode == (1 if broken else 0), done.stdout + done.stderr


def test_an_unmodified_copy_passes(tree):
    # the control for the test above: the copy itself is not what breaks the contracts
    done, verdicts = lint(tree)
    assert done.returncode == 0 and set(verdicts.values()) == {"KEPT"}, done.stdout + done.stderr


# --- child processes -------------------------------------------------------------------------------

PROCESS_MODULE = REPO / "conformance" / "_process.py"
# Everything Python in this repository that runs in its own environment. scripts/gym_bridge.py is left out:
# it runs inside the NeMo Gym side environments with the standard library and nemo_gym only.
SCANNED = ["conformance", "reference_impl", "fixtures", "gym_conformance", "benchmarks", "tests"]
SPAWNING_MODULES = {"subprocess", "pty", "multiprocessing", "concurrent.futures.process"}
SPAWNING_OS = re.compile(r"^(system|popen|fork|forkpty|posix_spawnp?|spawn\w*|exec\w*)$")
SPAWNING_ASYNCIO = {"create_subprocess_exec", "create_subprocess_shell"}


def spawning(source: str) -> list[str]:
    """Every place in ``source`` that could start a child process other than through conformance._process."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"l.{node.lineno} import {a.name}" for a in node.names
                      if a.name in SPAWNING_MODULES or a.name.startswith("multiprocessing.")]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            module = node.module or ""
            if module in SPAWNING_MODULES or module.startswith("multiprocessing."):
                found.append(f"l.{node.lineno} from {module} import ...")
            elif module == "os":
                found += [f"l.{node.lineno} from os import {a.name}" for a in node.names if SPAWNING_OS.match(a.name)]
            elif module == "asyncio":
                found += [f"l.{node.lineno} from asyncio import {a.name}" for a in node.names
                          if a.name in SPAWNING_ASYNCIO]
            elif module == "concurrent.futures":
                found += [f"l.{node.lineno} from {module} import {a.name}" for a in node.names
                          if a.name == "ProcessPoolExecutor"]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id == "os" and SPAWNING_OS.match(node.attr)) or \
                    (node.value.id == "asyncio" and node.attr in SPAWNING_ASYNCIO):
                found.append(f"l.{node.lineno} {node.value.id}.{node.attr}")
    return found


def test_the_scanner_sees_every_way_to_spawn():
    source = ("import subprocess\nfrom subprocess import run\nimport multiprocessing.pool\nfrom os import system\n"
              "import os\nos.execvp('x', ['x'])\nos.popen('x')\nimport asyncio\nasyncio.create_subprocess_exec('x')\n"
              "from concurrent.futures.process import ProcessPoolExecutor\n"
              "from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor\n")
    assert len(spawning(source)) == 9
    assert spawning("import os\nos.path.join('a')\nos.environ.get('X')\npytester.runpytest_subprocess()\n") == []


def test_child_processes_are_spawned_only_by_the_process_module():
    offenders = []
    for root in SCANNED:
        for path in sorted((REPO / root).rglob("*.py")):
            if path != PROCESS_MODULE:
                offenders += [f"{path.relative_to(REPO)} {where}" for where in spawning(path.read_text())]
    assert offenders == [], "spawn child processes through conformance/_process.py:\n" + "\n".join(offenders)


# --- shipped import names --------------------------------------------------------------------------

def test_the_wheel_ships_the_documented_top_level_packages():
    from setuptools import find_packages

    documented = re.search(r"The wheel ships exactly these top-level import packages: (.+?)\.",
                           (REPO / "ARCHITECTURE.md").read_text(), re.S)
    assert documented, "ARCHITECTURE.md no longer lists the shipped top-level packages"
    names = set(re.findall(r"`([\w.]+)`", documented.group(1)))
    include = CONFIG["tool"]["setuptools"]["packages"]["find"]["include"]
    shipped = {p.split(".")[0] for p in find_packages(where=str(REPO), include=include)}
    assert shipped == names
    assert set(PACKAGES) == names, "the import contracts must cover every shipped package"
