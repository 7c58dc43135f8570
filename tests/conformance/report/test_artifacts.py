"""write_reports: what the plugin calls at session end; all-or-nothing per run."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from conformance.report import ReportError
from conformance.report.artifacts import render_artifacts, write_reports


def test_writes_the_usual_three(tmp_path, report_dict):
    paths = write_reports(report_dict, tmp_path / "reports")
    assert {kind: p.name for kind, p in paths.items()} == {"json": "report.json", "html": "report.html",
                                                           "junit": "junit.xml"}
    assert json.loads(paths["json"].read_text()) == report_dict
    assert paths["html"].read_text().startswith("<!DOCTYPE html>")
    assert ET.parse(paths["junit"]).getroot().find("testsuite").get("failures") == "1"


def test_bad_report_writes_nothing(tmp_path, report_dict):
    (tmp_path / "report.html").write_text("previous run")
    report_dict["results"][0]["outcome"] = "passed"
    with pytest.raises(ReportError, match=r"results\[0\].outcome"):
        write_reports(report_dict, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    assert (tmp_path / "report.html").read_text() == "previous run"


def test_unknown_kind(report_dict):
    with pytest.raises(ValueError, match="unknown report artefact 'pdf'"):
        render_artifacts(report_dict, ["pdf"])
    assert render_artifacts(report_dict, ["markdown"])["markdown"].startswith("# gym-conformance: FAIL")
