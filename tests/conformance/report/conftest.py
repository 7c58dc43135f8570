"""Fixtures for the report tests; the sample data lives in ``report_samples``."""
from __future__ import annotations

import copy
import json

import pytest
from report_samples import build_report, simple_result, stock_vllm_results


@pytest.fixture
def report_dict() -> dict:
    """A failing stock-vLLM report (fresh copy per test, so tests may mutate it)."""
    return copy.deepcopy(build_report(stock_vllm_results()))


@pytest.fixture
def passing_dict() -> dict:
    results = [simple_result("E1", "endpoint/models", "pass"), simple_result("M1", "multiturn/prefix", "pass")]
    return build_report(results)


@pytest.fixture
def report_file(tmp_path, report_dict):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report_dict), encoding="utf-8")
    return path
