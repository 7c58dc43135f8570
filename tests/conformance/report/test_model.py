"""report.json model: round trip, validation errors that name the field, verdicts, token-diff helpers."""
from __future__ import annotations

import json
import math
import os

import pytest
from report_samples import FIRST_DIFF, P_1, P_2, G_1, build_report, simple_result
from hypothesis import given, strategies as st

import conformance.report as report_api
from conformance.report import (
    Report,
    ReportError,
    TokenDiff,
    describe_token_diff,
    diff_span,
    dumps,
    first_difference,
    load,
    loads,
    save,
    summarize,
    token_diff,
)


def test_public_api_is_pinned():
    assert sorted(report_api.__all__) == sorted([
        "OUTCOMES", "SCHEMA", "TIERS", "Environment", "Evidence", "HypothesisInfo", "Report", "ReportError",
        "Result", "Summary", "Target", "TokenDiff", "describe_token_diff", "diff_span", "dumps",
        "first_difference", "load", "loads", "save", "summarize", "token_diff"])


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
    assert m3.evidence.token_diff.first_diff == FIRST_DIFF
    assert m3.evidence.hypothesis.seed == 1234
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
    (lambda d: d.update(schema="gym-conformance/report/0"), "schema", "expected 'gym-conformance/report/1'"),
    (lambda d: d.update(started_at="yesterday"), "started_at", "ISO 8601"),
    (lambda d: d["target"].update(strict="yes"), "target.strict", "expected bool"),
    (lambda d: d["target"]["endpoints"].append(3), "target.endpoints[2]", "expected string"),
    (lambda d: d["results"][0].update(tier="MAY"), "results[0].tier", "MUST, SHOULD, INFO"),
    (lambda d: d["results"][0].update(outcome="ok"), "results[0].outcome", "got 'ok'"),
    (lambda d: d["results"][0].update(duration_s=True), "results[0].duration_s", "expected number"),
    (lambda d: d["results"][5].update(evidnce=None), "results[5].evidnce", "unknown field"),
    (lambda d: d["results"][5]["evidence"]["token_diff"].update(first_diff="3"),
     "results[5].evidence.token_diff.first_diff", "expected int or null, got str"),
    (lambda d: d["results"][5]["evidence"]["token_diff"].update(first_diff=10_000),
     "results[5].evidence.token_diff.first_diff", "outside both sequences"),
    (lambda d: d["results"][5]["evidence"]["token_diff"]["actual"].__setitem__(1, 1.5),
     "results[5].evidence.token_diff.actual[1]", "expected int"),
    (lambda d: d["results"][5]["evidence"]["hypothesis"].pop("seed"), "results[5].evidence.hypothesis.seed",
     "missing"),
    (lambda d: d["results"][5]["evidence"].update(request=[1]), "results[5].evidence.request", "expected object"),
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


def test_first_difference_cases():
    assert first_difference([1, 2, 3], [1, 2, 3]) is None
    assert first_difference([1, 2, 3], [1, 9, 3]) == 1
    assert first_difference([1, 2], [1, 2, 3]) == 2
    assert first_difference([], [5]) == 0


def test_retokenization_diff_and_phrase():
    decode = {26951: " Sk", 3834: "inny", 94224: " Skinny", 151645: "<|im_end|>"}
    diff = token_diff(P_1 + G_1, P_2, lambda ids: "".join(decode.get(i, "·") for i in ids),
                      expected_label="P_1 + G_1", actual_label="P_2", context=2)
    assert diff.first_diff == FIRST_DIFF
    # 2 ids before the difference, 2 from it: same text, different split.
    assert diff.expected_context == "·· Skinny"
    assert diff.actual_context == "·· Skinny<|im_end|>"
    assert describe_token_diff(diff) == f"[26951, 3834] became [94224] at position {FIRST_DIFF}"
    assert diff_span(P_1 + G_1, P_2, FIRST_DIFF) == (FIRST_DIFF + 2, FIRST_DIFF + 1)


def test_diff_helpers_edge_cases():
    def boom(ids):
        raise KeyError(ids[0])

    diff = token_diff([1, 2], [1, 3], boom)
    assert diff.expected_context.startswith("<could not decode: KeyError")
    assert describe_token_diff(token_diff([1, 2], [1, 2])) == "identical"
    assert describe_token_diff(token_diff([1], [1, 7, 8])) == "[] became [7, 8] at position 1"
    long = TokenDiff(list(range(20)), [], 0)
    assert describe_token_diff(long, max_ids=3) == "[0, 1, 2, …] became [] at position 0"
    # A repeated id must not be counted twice (prefix and suffix overlap).
    assert diff_span([5, 5, 5], [5, 5], 2) == (3, 2)


@given(st.lists(st.integers(0, 5), max_size=12), st.lists(st.integers(0, 5), max_size=12))
def test_diff_span_brackets_the_only_difference(expected, actual):
    start = first_difference(expected, actual)
    if start is None:
        assert expected == actual
        return
    end_e, end_a = diff_span(expected, actual, start)
    assert start <= end_e <= len(expected) and start <= end_a <= len(actual) and (end_e, end_a) != (start, start)
    rest = min(len(expected) - end_e, len(actual) - end_a)
    assert expected[:start] == actual[:start]
    assert expected[end_e:end_e + rest] == actual[end_a:end_a + rest]
    if rest == 0:  # resync only at the very end: both sides are used up
        assert (end_e, end_a) == (len(expected), len(actual))
