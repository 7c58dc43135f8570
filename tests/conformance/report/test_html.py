"""HTML report: parsed with html.parser and checked for content, escaping, windowing, embedded JSON."""
from __future__ import annotations

import json

import pytest
from report_samples import (
    FIRST_DIFF,
    P_2,
    build_report,
    parse_html,
    retokenization_result,
)

from conformance.report import Report, ReportError
from conformance.report._templates import environment
from conformance.report.html import render_html, write_html
from conformance.report.matrix import build_matrix


@pytest.fixture
def page(report_dict):
    return parse_html(render_html(report_dict))


def detail(page, check_id):
    return page.find("details", "detail", data_check=check_id)


def test_header_names_target_and_environment(page):
    assert page.find("span", id="verdict").text() == "FAIL"
    meta = page.find("table", id="meta").text()
    for text in ("http://127.0.0.1:8001/v1", "http://127.0.0.1:8002/v1", "tiny-qwen3", "/work/main/.cache/fixtures",
                 "off: SHOULD failures are Non-Strict", "avx2 avx512f fma", "42.5 s", "Python 3.11.9",
                 "hypothesis profile ci", "gym-conformance 0.1.0"):
        assert text in meta
    assert "FAIL" in page.find("title").text()


def test_summary_counts_and_legend(page):
    counts = {b.attrs["data-filter"]: int(b.attrs["data-count"]) for b in page.find_all("button", "count")}
    assert counts == {"pass": 4, "fail": 1, "non_strict": 1, "info": 1, "skipped": 1, "error": 0}
    legend = page.find("dl", "legend-text").text()
    assert all(label in legend for label in ("Pass", "Fail", "Non-Strict", "Info", "Skipped", "Error"))


def test_checks_grouped_by_family_in_natural_order(page):
    tables = page.find_all("table", "checks")
    assert [t.attrs["data-family"] for t in tables] == ["E", "M", "T"]
    assert [r.attrs["data-check"] for r in tables[0].find_all("tr", "check")] == ["E1", "E4", "E6", "E9", "E10"]
    m3 = tables[1].find("tr", "check", data_check="M3")
    assert m3.attrs["data-outcome"] == "fail" and m3.find("span", "badge").text() == "Fail"
    assert m3.find("a").attrs["href"] == "#r5"
    assert "[26951, 3834] became [94224]" in m3.find("td", "message").text()


def test_details_only_for_failures_and_evidence(page, report_dict):
    # Failures first, then non-strict; passing checks without evidence get no detail.
    assert [d.attrs["data-check"] for d in page.find_all("details", "detail")] == ["M3", "E6"]
    assert "open" in detail(page, "M3").attrs and "open" not in detail(page, "E6").attrs


def test_failure_detail_restates_requirement_and_reproduction(page, report_dict):
    d = detail(page, "M3")
    evidence = report_dict["results"][5]["evidence"]
    assert d.find("p", "requirement").text().startswith("Requirement (MUST): A non-canonical previous generation")
    assert d.find("p", "verdict").text() == evidence["verdict"]
    assert json.loads(d.find("div", "request").find("pre").text()) == evidence["request"]
    assert d.find("div", "curl").find("pre").text() == evidence["curl"]
    assert json.loads(d.find("details", "response").find("pre").text()) == evidence["response"]
    metrics = {row.find("th").text(): row.find("td").text() for row in d.find("table", "metrics").find_all("tr")}
    assert metrics == {"prompt_tokens": str(len(P_2)), "matched_prefix": str(FIRST_DIFF)}
    assert "pytest --hypothesis-seed=1234 --check M3" in d.find("p", "hypothesis").text()
    assert json.loads(d.find("div", "example").find("pre").text()) == {"turns": 2, "word": " Skinny"}
    assert d.find("ul", "notes").text() == "decoded text is identical; only the token split differs"


def test_token_diff_highlights_first_difference(page):
    table = detail(page, "M3").find("table", "tokens")
    expected, actual = table.find_all("tr", "side")
    assert expected.find("th").text().startswith("P_1 + G_1") and actual.find("th").text().startswith("P_2")
    first_e, first_a = expected.find("td", "first"), actual.find("td", "first")
    assert (first_e.attrs["data-pos"], first_e.text()) == (str(FIRST_DIFF), "26951")
    assert (first_a.attrs["data-pos"], first_a.text()) == (str(FIRST_DIFF), "94224")
    # The hunk is aligned: 3834 sits over a gap cell, then both rows resync on <|im_end|>.
    cells_e, cells_a = expected.find_all("td", "tok"), actual.find_all("td", "tok")
    col = cells_e.index(first_e)
    assert cells_a.index(first_a) == col
    assert (cells_e[col + 1].text(), "gap" in cells_a[col + 1].classes) == ("3834", True)
    assert cells_e[col + 2].text() == cells_a[col + 2].text() == "151645"
    markers = table.find("tr", "markers").find_all("td", "marker")
    assert markers[col].text() == f"▼ {FIRST_DIFF}" and sum(bool(m.text()) for m in markers) == 1
    # Windowed: 8 ids of common prefix, the rest counted.
    assert [c.attrs["data-pos"] for c in cells_e[:col]] == [str(p) for p in range(FIRST_DIFF - 8, FIRST_DIFF)]
    more_e = [td.text() for td in expected.find_all("td", "more")]
    assert more_e == [f"… {FIRST_DIFF - 8} more", ""]
    assert [td.text() for td in actual.find_all("td", "more")][1] == "… 3 more"


def test_long_sequences_are_windowed_not_dumped():
    result = retokenization_result()
    prefix = list(range(1000, 6000))
    result["evidence"].update(request=None, response=None)
    result["evidence"]["token_diff"].update(expected=prefix + [7, 8] + prefix, actual=prefix + [9] + prefix,
                                            first_diff=len(prefix))
    text = render_html(build_report([result]))
    page = parse_html(text)
    table = page.find("table", "tokens")
    expected, actual = table.find_all("tr", "side")
    assert len(expected.find_all("td", "tok")) == 8 + 2 + 8
    assert [td.text() for td in expected.find_all("td", "more")] == ["… 4992 more", "… 4992 more"]
    assert [td.text() for td in actual.find_all("td", "more")] == ["… 4992 more", "… 4992 more"]
    assert "3500" not in page.find("div", "diff").text()
    # The embedded JSON holds the full lists once; everything else stays small.
    visible = text.split('<div id="report-data"')[0]
    assert len(visible) < 30_000 and "1500, 1501" not in visible


def test_long_differing_hunk_is_capped():
    result = retokenization_result()
    result["evidence"]["token_diff"].update(expected=list(range(100)), actual=list(range(50)) + [-1] * 200,
                                            first_diff=50)
    expected, actual = parse_html(render_html(build_report([result]))).find("table", "tokens").find_all("tr", "side")
    assert len(actual.find_all("td", "tok")) == 8 + 16
    assert [td.text() for td in actual.find_all("td", "more")] == ["… 42 more", "… 184 more"]
    assert [td.text() for td in expected.find_all("td", "more")] == ["… 42 more", "… 34 more"]


def test_identical_sequences_show_the_tail():
    result = retokenization_result()
    result["evidence"]["token_diff"].update(expected=list(range(40)), actual=list(range(40)), first_diff=None)
    table = parse_html(render_html(build_report([result]))).find("table", "tokens")
    cells = table.find_all("tr", "side")[0].find_all("td", "tok")
    assert [c.text() for c in cells] == [str(i) for i in range(24, 40)] and not table.find_all("td", "first")


def test_evidence_is_escaped(report_dict):
    report_dict["results"][5]["message"] = "served <script>alert('x')</script> & <|im_end|>"
    text = render_html(report_dict)
    page = parse_html(text)
    assert len(page.find_all("script")) == 1  # only the report's own filter script
    assert not [n for n in page.iter() if "im_end" in n.tag or n.tag == "|im_end|"]
    assert "&lt;|im_end|&gt;" in text and "<|im_end|>" not in text.split("<script>")[0]
    contexts = [pre.text() for pre in detail(page, "M3").find_all("pre", "context")]
    assert contexts == [report_dict["results"][5]["evidence"]["token_diff"]["expected_context"],
                        report_dict["results"][5]["evidence"]["token_diff"]["actual_context"]]
    assert "<script>alert('x')</script>" in detail(page, "M3").find("p", "message").text()
    assert "<script>alert(1)</script>" in detail(page, "M3").find("div", "request").text()


def test_full_report_is_embedded_as_json(report_dict):
    blob = parse_html(render_html(report_dict)).find("div", id="report-data").attrs["data-jsonblob"]
    assert json.loads(blob) == report_dict


def test_passing_report_has_no_details(passing_dict):
    page = parse_html(render_html(Report.from_dict(passing_dict)))
    assert page.find("span", id="verdict").text() == "PASS"
    assert not page.find_all("section", id="details") and not page.find_all("section", id="matrix")


def test_matrix_section(report_dict, passing_dict):
    matrix = build_matrix({"stock-vllm": report_dict, "reference": passing_dict})
    section = parse_html(render_html(report_dict, matrix=matrix)).find("section", id="matrix")
    row = section.find("tr", data_row="stock-vllm")
    assert row.find("td", data_check="M3").attrs["data-outcome"] == "fail"
    assert section.find("tr", data_row="reference").find("td", data_check="M3").attrs["data-outcome"] == ""


def test_invalid_input_is_rejected_and_nothing_written(tmp_path, report_dict):
    out = tmp_path / "r.html"
    out.write_text("previous")
    report_dict["results"][0]["tier"] = "MAY"
    with pytest.raises(ReportError, match=r"results\[0\].tier"):
        write_html(report_dict, out)
    assert out.read_text() == "previous" and len(list(tmp_path.iterdir())) == 1


def test_write_html_and_template_settings(tmp_path, report_dict):
    path = write_html(Report.from_dict(report_dict), tmp_path / "r.html")
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert environment().autoescape is True
    assert "<link" not in path.read_text() and "src=" not in path.read_text()  # self-contained


def test_non_json_error_body_is_shown_as_text(report_dict):
    report_dict["results"][5]["evidence"]["response"] = "<html>502 Bad Gateway</html>"
    page = parse_html(render_html(report_dict))
    assert detail(page, "M3").find("details", "response").find("pre").text() == "<html>502 Bad Gateway</html>"


def test_empty_report_renders():
    page = parse_html(render_html(build_report([])))
    assert page.find("span", id="verdict").text() == "PASS"
    assert "No checks ran." in page.find("section", id="checks").text()


def test_logprob_evidence_is_plotted_inline():
    """M24's served and re-scored log probs become two inline SVG plots (data URIs: nothing from the network)."""
    from report_samples import build_report, simple_result

    from conformance.report.html import render_html

    result = simple_result("M24", "logprobs/teacher-forced", "fail")
    result["evidence"] = {"verdict": "off policy", "endpoint": "http://e/v1", "request": None, "response": None,
                          "curl": None, "token_diff": None, "hypothesis": None, "notes": [],
                          "metrics": {"token_mult_prob_error": 1.31, "served_logprobs": [-0.1, -1.2, -0.3],
                                      "rescored_logprobs": [-0.4, -1.9, -0.3]}}
    page = render_html(build_report([result]))
    assert page.count('src="data:image/svg+xml;base64,') == 2 and "Served vs re-scored log probs" in page
    assert "served_logprobs" not in page.split('id="report-data"')[0]  # the lists are plotted, not tabulated


def test_plots_are_skipped_without_matplotlib(monkeypatch):
    import builtins

    from conformance.report.plots import logprob_plots

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert logprob_plots([-0.1], [-0.2]) == []


def test_drift_search_statistics_are_plotted():
    from report_samples import build_report, simple_result

    from conformance.report.html import render_html

    result = simple_result("M1", "multiturn/prefix-continuity", "fail")
    result["evidence"] = {"verdict": "drift search: turn 2 prompt re-tokenized", "endpoint": "http://e/v1",
                          "request": None, "response": None, "curl": None, "token_diff": None, "notes": [],
                          "hypothesis": {"seed": 3, "example": [{"role": "user", "text": "x"}]},
                          "metrics": {"examples_tried": 19, "first_failing_example": 3, "shrink_steps": 16}}
    page = render_html(build_report([result]))
    assert "Drift search: examples tried and shrink steps" in page and "data:image/svg+xml;base64," in page
