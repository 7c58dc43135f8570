"""One pytest item per registered check (and variant), per endpoint.

The module only names the checks; the endpoint arrives through the ``conformance_ctx`` fixture after option
parsing (``pytest_generate_tests`` in the plugin parametrizes it), so nothing touches the network at import.
"""
from __future__ import annotations

import pytest

from conformance.checks import CHECKS, run_check
from conformance.core import CATALOGUE, CheckInfo, CheckSkipped


def _make(check_id: str, variant: str):
    def test(conformance_ctx, conformance_info):
        try:
            run_check(conformance_ctx, check_id, variant)
        except CheckSkipped as exc:
            pytest.skip(str(exc))
        except CheckInfo as info:
            conformance_info(info)
    test.__doc__ = CATALOGUE[check_id].requirement
    return pytest.mark.conformance_check(check_id, variant)(test)


for _id, _variants in CHECKS.items():
    for _variant, _ in _variants:
        _name = f"test_{_id}_{CATALOGUE[_id].name.replace('/', '_').replace('-', '_')}"
        if len(_variants) > 1:
            _name += "_" + _variant.replace("-", "_")
        globals()[_name] = _make(_id, _variant)
