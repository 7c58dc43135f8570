"""JUnit XML from report.json: well-formed, one testcase per result, the right failure elements."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from report_samples import VERDICT, build_report, simple_result

from conformance.report.junit import render_junit, write_junit


def cases(xml_text):
    root = ET.fromstring(xml_text.encode("utf-8"))
    suite = root.find("testsuite")
    return root, suite, {case.find("properties/property[@name='check_id']").get("value"): case
                         for case in suite.findall("testcase")}


def test_one_testcase_per_result_with_properties(report_dict):
    root, suite, by_id = cases(render_junit(report_dict))
    assert root.tag == "testsuites" and suite.get("name") == "gym-conformance"
    totals = [suite.get(key) for key in ("tests", "failures", "errors", "skipped")]
    assert totals == ["8", "1", "0", "1"]
    assert list(by_id) == ["E1", "E4", "E6", "E9", "E10", "M3", "M24", "T1"]
    m3 = by_id["M3"]
    props = {p.get("name"): p.get("value") for p in m3.findall("properties/property")}
    assert props == {"check_id": "M3", "tier": "MUST", "outcome": "fail"}
    assert (m3.get("classname"), m3.get("name")) == ("conformance.suite.test_multiturn", "test_retokenization[ep0]")
    suite_props = [(p.get("name"), p.get("value")) for p in suite.findall("properties/property")]
    assert ("endpoint", "http://127.0.0.1:8002/v1") in suite_props and ("verdict", "fail") in suite_props


def test_failure_carries_verdict_and_windowed_diff(report_dict):
    _, _, by_id = cases(render_junit(report_dict))
    failure = by_id["M3"].find("failure")
    assert failure.get("message") == VERDICT and failure.get("type") == "MUST M3"
    body = failure.text
    assert "[26951] [3834]" in body and "[94224]" in body and "… 60 more" in body
    assert "curl -sS http://127.0.0.1:8001/v1/chat/completions" in body
    assert body.count(VERDICT) == 1  # message equal to the verdict is not repeated
    # Passing, non-strict and info results are not failures; skipped carries its reason.
    assert all(by_id[c].find("failure") is None for c in ("E1", "E6", "M24"))
    assert by_id["E9"].find("skipped").get("message") == "no /tokenize route"
    assert "usage.prompt_tokens 71" in by_id["E6"].find("system-out").text


def test_error_outcome_and_control_characters():
    result = simple_result("E2", "endpoint/chat", "error", message="endpoint returned \x00\x1b[31m garbage")
    xml_text = render_junit(build_report([result]))
    _, suite, by_id = cases(xml_text)  # parses: control characters were made printable
    error = by_id["E2"].find("error")
    assert suite.get("errors") == "1" and "\\x00\\x1b[31m garbage" in error.get("message")


def test_write_junit(tmp_path, report_dict):
    path = write_junit(report_dict, tmp_path / "junit.xml")
    assert path.read_text(encoding="utf-8").startswith('<?xml version="1.0" encoding="utf-8"?>')
    ET.parse(path)
