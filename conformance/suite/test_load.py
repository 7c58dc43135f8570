"""R10, the load tier: one item for the whole run (the sessions spread over every ``--endpoint``), skipped
without ``--load N``. The plugin's ``conformance_load`` fixture drives the load after option parsing."""
from __future__ import annotations

import pytest

from conformance.core import CATALOGUE


@pytest.mark.conformance_check("R10", "load")
def test_R10_load_concurrent_sessions(conformance_load, conformance_measured):
    conformance_measured(conformance_load())


test_R10_load_concurrent_sessions.__doc__ = CATALOGUE["R10"].requirement
