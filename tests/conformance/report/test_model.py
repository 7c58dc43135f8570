"""report.json model: round trip, validation errors that name the field, verdicts, token-diff helpers."""
from __future__ import annotations

import json
import math
import os
import sys

import pytest
from report_samples import FIRST_DIFF, P_2, build_report, simple_result

import conformance.report as report_api
from conformance._process import run_command
from conformance.core import Evidence, TokenDiff
from conformance.report import Report, ReportError, dumps, load, loads, save, summarize


def test_public_api_is_pinned():
    assert sorted(report_api.__all__) == sorted([
        "OUTCOMES", "SCHEMA", "TIERS", "VERDICTS", "Environment", "Report", "ReportError", "Result", "Summary",
        "Target", "dumps", "load", "loads", "save", "summarize"])


def test_round_trip_dict_and_file(tmp_path, report_dict):
    report = Report.from_dict(report_dict)
    assert report.to_dict() == report_dict
    path = save(report, tmp_path / "out.json")
    assert load(path).to_dict() == report_dict
    assert json.loads(path.read_text()) == report_dict
    assert loads(dumps(report, compact=True)).to_dict() == report_dict


def test_typed_access(report_dict):
    report = Report.from_dict(report_dict)
    m3 = next(r for r in report.results if r.check_id == "M3")
    # The report holds conformance.core's own evidence types: what a check raises is what gets rendered.
    assert isinstance(m3.evidence, Evidence) and isinstance(m3.evidence.token_diff, TokenDiff)
    assert m3.evidence.token_diff.first_diff == FIRST_DIFF
    assert m3.evidence.hypothesis == {"seed": 1234, "example": {"turns": 2, "word": " Skinny"}}
    assert report.summary.verdict == "fail" and report.target.model == "tiny-qwen3"


def test_saved_json_keeps_id_lists_on_one_line(tmp_path, report_dict):
    text = save(Report.from_dict(report_dict), tmp_path / "r.json").read_text()
    assert ", ".join(map(str, P_2)) in text  # not one id per line
    assert len(text.splitlines()) < 200


def test_non_finite_metrics_become_strict_json(report_dict):
    report_dict["results"][5]["evidence"]["metrics"]["kl"] = math.nan
    report = Report.from_dict(report_dict)
    text = dumps(report)
    assert "NaN" in text and json.loads(text, parse_constant=pytest.fail)["results"][5]["evidence"]["metrics"][
        "kl"] == "NaN"


def test_save_is_atomic_when_serialization_fails(tmp_path, report_dict):
    path = tmp_path / "report.json"
    path.write_text("old")
    report = Report.from_dict(report_dict)
    report.results[0].evidence = None
    report.results[5].evidence.metrics["bad"] = object()  # not JSON
    with pytest.raises(TypeError):
        save(report, path)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["report.json"]


@pytest.mark.parametrize("mutate, field, words", [
    (lambda d: d.pop("results"), "results", "missing"),
    (lambda d: d.update(schema="gym-conformance/report/0"), "schema", "reads 'gym-conformance/report/1'"),
    (lambda d: d.update(started_at="yesterday"), "started_at", "ISO 8601"),
    (lambda d: d["target"].update(strict="yes"), "target.strict", "valid boolean"),
    (lambda d: d["target"]["endpoints"].append(3), "target.endpoints[2]", "valid string"),
    (lambda d: d["results"][0].update(tier="MAY"), "results[0].tier", "'MUST', 'SHOULD' or 'INFO'"),
    (lambda d: d["results"][0].update(outcome="ok"), "results[0].outcome", "got str 'ok'"),
    (lambda d: d["results"][0].update(duration_s=True), "results[0].duration_s", "valid number, got bool"),
    (lambda d: d["results"][5].update(evidnce=None), "results[5].evidnce", "unknown field"),
    (lambda d: d["results"][5]["evidence"]["token_diff"].update(first_diff="3"),
     "results[5].evidence.token_diff.first_diff", "valid integer, got str"),
    (lambda d: d["results"][5]["evidence"]["token_diff"].update(first_diff=10_000),
     "results[5].evidence.token_diff.first_diff", "outside both sequences"),
    (lambda d: d["results"][5]["evidence"]["token_diff"]["actual"].__setitem__(1, 1.5),
     "results[5].evidence.token_diff.actual[1]", "valid integer"),
    (lambda d: d["results"][5]["evidence"]["hypothesis"].pop("seed"), "results[5].evidence.hypothesis.seed",
     "missing"),
    (lambda d: d["results"][5]["evidence"].update(metrics=[1]), "results[5].evidence.metrics", "valid dictionary"),
    (lambda d: d["summary"]["counts"].update(fail=0), "summary.counts.fail", "says 0 but results have 1"),
    (lambda d: d["summary"].update(verdict="pass"), "summary.verdict", "says 'pass' but results give 'fail'"),
    (lambda d: d["summary"]["counts"].pop("error"), "summary.counts.error", "missing"),
])
def test_validation_names_the_field(report_dict, mutate, field, words):
    mutate(report_dict)
    with pytest.raises(ReportError) as info:
        Report.from_dict(report_dict)
    assert info.value.field == field
    assert words in str(info.value) and str(info.value).startswith(field + ":")


def test_non_object_and_bad_json():
    with pytest.raises(ReportError, match="expected object, got list"):
        Report.from_dict([])
    with pytest.raises(ReportError, match=r"r.json: not valid JSON \(line 1, column 2"):
        loads("{oops", source="r.json")


@pytest.mark.parametrize("outcomes, verdict", [
    ([], "pass"),
    (["pass", "non_strict", "info", "skipped"], "pass"),
    (["pass", "error"], "error"),
    (["error", "fail", "pass"], "fail"),
    (["fail"], "fail"),
])
def test_verdict(outcomes, verdict):
    results = [simple_result(f"E{i}", "x", o) for i, o in enumerate(outcomes)]
    report = Report.from_dict(build_report(results))
    assert summarize(report.results).verdict == verdict == report.summary.verdict
    assert sum(report.summary.counts.values()) == len(outcomes)


def test_report_constructed_in_python_computes_its_summary(report_dict):
    parsed = Report.from_dict(report_dict)
    fresh = Report(tool_version="0.1.0", started_at=parsed.started_at, finished_at=parsed.finished_at,
                   duration_s=1.0, target=parsed.target, environment=parsed.environment, results=parsed.results)
    assert fresh.summary == parsed.summary


def test_free_form_bodies_accept_non_json_error_text(report_dict):
    # The client records a non-JSON error body as a string; the report must still load and render.
    report_dict["results"][5]["evidence"]["response"] = "<html>502 Bad Gateway</html>"
    report = Report.from_dict(report_dict)
    assert report.results[5].evidence.response == "<html>502 Bad Gateway</html>"
    assert report.to_dict() == report_dict


def test_a_failure_raised_by_a_check_round_trips(report_dict):
    """The checks' CheckFailure evidence (core types) serialises to exactly what the schema reads back."""
    from conformance.core import CheckFailure, token_diff

    diff = token_diff([1, 2, 26951, 3834, 7], [1, 2, 94224, 7, 9], expected_label="P_1 + G_1", actual_label="P_2",
                      prefix=True)
    failure = CheckFailure("M3", "re-tokenized", Evidence(verdict="re-tokenized", endpoint="http://x/v1",
                                                         token_diff=diff))
    result = {"check_id": failure.check_id, "name": failure.name, "tier": failure.tier,
              "requirement": failure.requirement, "outcome": "fail", "nodeid": "t.py::t", "duration_s": 0.1,
              "message": failure.verdict, "evidence": failure.evidence.to_dict(), "variant": None}
    report = Report.from_dict(build_report([result]))
    assert report.results[0].evidence == failure.evidence
    assert loads(dumps(report)).to_dict()["results"][0] == result


def test_model_imports_neither_pytest_nor_jinja2():
    code = ("import sys, conformance.report; "
            "print(sorted(m for m in ('pytest', 'jinja2', '_pytest') if m in sys.modules))")
    out = run_command([sys.executable, "-c", code], capture=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
