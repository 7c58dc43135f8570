"""Where the real NeMo Gym runs for these tests: side environments built by ``scripts/setup-gym-env.sh``.

:class:`GymBridge` keeps one ``scripts/gym_bridge.py serve`` child per Gym version and asks it, line by
line, what Gym's own ``vllm_model`` server makes of a Responses request and a chat reply.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance._process import LineChild

REPO = Path(__file__).resolve().parents[2]
ENVS = REPO / ".venv-gym"
BRIDGE = REPO / "scripts" / "gym_bridge.py"
VERSIONS = ("0.4.0", "0.7.0")


def gym_python(version: str) -> Path:
    """The side environment's interpreter; skips only where the machine has no Python 3.12 at all."""
    unavailable = ENVS / "UNAVAILABLE"
    if unavailable.is_file():
        pytest.skip(f"real NeMo Gym {version} not available: {unavailable.read_text().strip()}")
    python = ENVS / version / "bin" / "python"
    if not python.is_file():
        pytest.fail(f"no side environment for nemo-gym {version} at {python.parent.parent}: run `make gym-env` "
                    "(scripts/setup-gym-env.sh)", pytrace=False)
    return python


class GymBridge:
    def __init__(self, version: str) -> None:
        self.version = version
        self.child = LineChild([str(gym_python(version)), str(BRIDGE), "serve"], cwd=REPO)

    def contiguous(self, output: list[dict[str, Any]]) -> tuple[bool, str]:
        """Gym's own contiguity rule over a rollout's output items (needs a Gym that ships it: 0.7.0)."""
        answer = self._send({"contiguity": output})
        return answer["contiguous"], answer.get("why", "")

    def affinity(self, base_urls: list[str], session_ids: list[str]) -> list[int]:
        """The endpoint index Gym's model server sends each session to (its ``_resolve_client``), in order."""
        return self._send({"affinity": {"base_urls": base_urls, "session_ids": session_ids}})["endpoints"]

    def ask(self, *, config: dict[str, Any], input: list[dict[str, Any]], params: dict[str, Any],
            completion: dict[str, Any]) -> dict[str, Any]:
        """Gym's answer: ``body`` (what it sends upstream), ``response`` (its Responses reply) or ``error``."""
        return self._send({"config": config, "input": input, "params": params, "completion": completion})

    def _send(self, request: dict[str, Any]) -> dict[str, Any]:
        line = self.child.ask(json.dumps(request))
        if line is None:
            raise RuntimeError(f"the nemo-gym {self.version} bridge exited (code {self.child.poll()})")
        return json.loads(line)

    def close(self) -> None:
        self.child.close(timeout=10)
