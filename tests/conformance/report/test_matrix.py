"""Mutant × check matrix: worst-outcome cells, JSON round trip, Markdown and HTML renderings."""
from __future__ import annotations

import json

import pytest
from report_samples import build_report, parse_html, simple_result

from conformance.report import ReportError
from conformance.report.matrix import (
    Matrix,
    build_matrix,
    render_matrix_html,
    render_matrix_markdown,
    worst_outcome,
)


@pytest.fixture
def matrix(report_dict, passing_dict):
    per_rank = build_report([simple_result("E1", "endpoint/models", "pass"),
                             simple_result("M1", "multiturn/prefix", "pass"),
                             simple_result("M1", "multiturn/prefix", "fail")])  # one DP rank broke continuity
    return build_matrix({"reference": passing_dict, "no-correction": report_dict, "rank-1-broken": per_rank})


def test_cells_rows_columns(matrix):
    assert matrix.rows == ["reference", "no-correction", "rank-1-broken"]
    assert matrix.columns == ["E1", "E4", "E6", "E9", "E10", "M1", "M3", "M24", "T1"]
    assert matrix.outcome("no-correction", "M3") == "fail" and matrix.outcome("reference", "M3") is None
    assert matrix.outcome("rank-1-broken", "M1") == "fail"  # worst of pass and fail
    assert matrix.failing("no-correction") == {"M3"} and matrix.failing("reference") == set()
    assert [matrix.verdict(r) for r in matrix.rows] == ["pass", "fail", "fail"]
    assert matrix.checks["M3"] == {"name": "multiturn/retokenization", "tier": "MUST"}


def test_worst_outcome_order():
    assert worst_outcome(["pass", "skipped"]) == "pass"
    assert worst_outcome(["info", "non_strict", "pass"]) == "non_strict"
    assert worst_outcome(["error", "fail"]) == "fail" and worst_outcome([]) is None


def test_json_round_trip_and_validation(matrix):
    data = json.loads(json.dumps(matrix.to_dict()))
    assert data["schema"] == "gym-conformance/matrix/1"
    assert Matrix.from_dict(data) == matrix
    data["cells"]["reference"]["E1"] = "ok"
    with pytest.raises(ReportError, match=r"cells.reference.E1: Input should be 'pass'"):
        Matrix.from_dict(data)
    data["cells"]["reference"]["E1"] = "pass"
    data["cells"]["reference"]["Z9"] = "pass"
    with pytest.raises(ReportError, match="not listed in columns"):
        Matrix.from_dict(data)


def test_markdown(matrix):
    lines = render_matrix_markdown(matrix).splitlines()
    assert lines[0] == "| endpoint | E1 | E4 | E6 | E9 | E10 | M1 | M3 | M24 | T1 | verdict |"
    assert lines[1].startswith("| --- | :-: |")
    assert lines[2] == "| reference | ✓ |   |   |   |   | ✓ |   |   |   | pass |"
    assert lines[3] == "| no-correction | ✓ | ✓ | ~ | – | ✓ |   | ✗ | i | ✓ | fail |"
    assert lines[-1].startswith("✓ pass · ✗ fail")
    transposed = render_matrix_markdown(matrix, transpose=True, columns=["M1", "M3"]).splitlines()
    assert transposed[0] == "| check | tier | reference | no-correction | rank-1-broken |"
    assert transposed[3] == "| M3 `multiturn/retokenization` | MUST |   | ✗ |   |"
    assert transposed[4] == "| **verdict** |  | pass | fail | fail |"


def test_html_section(matrix):
    section = parse_html(render_matrix_html(matrix)).find("section", id="matrix")
    headers = [th.text() for th in section.find_all("th", "col")]
    assert headers == matrix.columns
    row = section.find("tr", data_row="rank-1-broken")
    assert row.find("td", data_check="M1").text() == "✗" and "o-fail" in row.find("td", data_check="M1").classes


def test_duplicate_rows_rejected(passing_dict):
    with pytest.raises(ValueError, match="duplicate matrix row 'a'"):
        build_matrix([("a", passing_dict), ("a", passing_dict)])
