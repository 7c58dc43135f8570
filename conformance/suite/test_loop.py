"""One pytest item per loop check, judged from a training loop's dumps (``--rollouts``, ``--train-batches``), and
per benchmark check, judged from its metrics (``--metrics``, ``--benchmark``).

Every check ran in one streaming pass at session start (the plugin's ``judge_loop``); an item only reports its
check's outcome, so the dumps are read once however many items there are.
"""
from __future__ import annotations

import pytest

from conformance.checks.loop import CURVE_CHECKS, LOOP_CHECKS
from conformance.core import CATALOGUE, CheckSkipped


def _make(check_id: str, needs: str):
    def test(conformance_loop):
        outcome = conformance_loop.get(check_id, CheckSkipped(f"needs {needs}"))
        if isinstance(outcome, CheckSkipped):
            pytest.skip(str(outcome))
        if outcome is not None:
            raise outcome
    test.__doc__ = CATALOGUE[check_id].requirement
    return pytest.mark.conformance_check(check_id, "dumps", loop=True)(test)


for _ids, _needs in ((LOOP_CHECKS, "--rollouts (a training loop's dumps)"),
                     (CURVE_CHECKS, "--metrics (a training run's metrics)")):
    for _id in _ids:
        globals()[f"test_{_id}_{CATALOGUE[_id].name.replace('/', '_').replace('-', '_')}"] = _make(_id, _needs)
