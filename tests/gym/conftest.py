from __future__ import annotations

import pytest

from ._bridge import VERSIONS, GymBridge


@pytest.fixture(scope="session")
def gym_bridges():
    """One bridge per Gym version, started on first use and shared by the whole session."""
    bridges: dict[str, GymBridge] = {}

    def get(version: str) -> GymBridge:
        if version not in bridges:
            bridges[version] = GymBridge(version)
        return bridges[version]
    yield get
    for bridge in bridges.values():
        bridge.close()


@pytest.fixture(params=VERSIONS)
def gym(request, gym_bridges) -> GymBridge:
    return gym_bridges(request.param)
