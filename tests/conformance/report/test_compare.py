"""The comparison page: runs side by side, checks as rows, each cell linking to that run's evidence."""
from __future__ import annotations

import json
import re

import pytest
from report_samples import build_report, simple_result

from conformance.report import Report
from conformance.report.compare import Run, compare_view, render_compare_html


def _run(name, outcomes, href=None):
    results = [simple_result(check_id, "x", outcome) for check_id, outcome in outcomes]
    return Run(name, Report.from_dict(build_report(results)), href)


def test_rows_are_checks_columns_are_runs_worst_outcome_per_cell():
    a = _run("reference", [("E3", "pass"), ("M1", "pass"), ("M1", "pass")], "reference/report.html")
    b = _run("stock-vllm", [("E3", "pass"), ("M1", "pass"), ("M1", "fail")], "stock-vllm/report.html")
    view = compare_view([a, b])
    assert [r["id"] for r in view["rows"]] == ["E3", "M1"] and view["differs"] == 1
    m1 = {r["id"]: r for r in view["rows"]}["M1"]
    assert [c["outcome"] for c in m1["cells"]] == ["pass", "fail"]
    assert re.fullmatch(r"stock-vllm/report\.html#r2", m1["cells"][1]["href"])  # the failing variant's detail


def test_page_is_self_contained_escaped_and_filterable(tmp_path):
    hostile = _run("<script>alert(1)</script>", [("E3", "fail"), ("M3", "pass")])
    page = render_compare_html([_run("reference", [("E3", "pass"), ("M3", "pass")]), hostile])
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert not re.search(r'(src|href)="https?://', page)  # nothing loaded from the network
    assert 'id="only-differing"' in page and 'class="same"' in page and 'class="differs"' in page
    assert 'data-outcome="fail"' in page


def test_check_missing_from_a_run_is_shown_as_not_run():
    page = render_compare_html([_run("a", [("E3", "pass")]), _run("b", [("M3", "pass")])])
    assert page.count('title="not run"') == 2


def test_names_must_differ_and_runs_must_exist():
    with pytest.raises(ValueError, match="must differ"):
        render_compare_html([_run("a", []), _run("a", [])])
    with pytest.raises(ValueError, match="at least one"):
        render_compare_html([])


def test_cli_writes_the_page_linking_each_run(tmp_path, capsys):
    from gym_conformance.cli import main

    for name, outcome in (("reference", "pass"), ("stock-vllm", "fail")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "report.json").write_text(json.dumps(build_report([simple_result("M3", "x", outcome)])))
        (folder / "report.html").write_text("<html></html>")
    out = tmp_path / "compare.html"
    assert main(["report", "compare", str(tmp_path / "reference"), str(tmp_path / "stock-vllm"),
                 "--out", str(out)]) == 0
    page = out.read_text()
    assert 'href="reference/report.html"' in page and 'href="stock-vllm/report.html#r0"' in page
    assert main(["report", "compare", str(tmp_path / "nowhere")]) == 2
    assert "cannot read" in capsys.readouterr().err
