"""Any valid report renders: well-formed HTML that holds the report, parseable JUnit, and no injected markup."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from report_samples import build_report, parse_html

from conformance.report import OUTCOMES, TIERS
from conformance.report.html import render_html
from conformance.report.junit import render_junit
from conformance.report.markdown import render_markdown

# Text that tries to break out: tags, entities, quotes, template markers, control characters.
nasty = st.lists(st.sampled_from([*"<>&\"'`|/ \n\t\x00\x1bab{}%#", "<|im_end|>", "</script>", "{{ x }}"]),
                max_size=8).map("".join)
ids = st.lists(st.integers(0, 151_000), max_size=30)


@st.composite
def token_diffs(draw):
    expected = draw(ids)
    actual = draw(st.one_of(ids, st.builds(lambda tail: expected + tail, ids)))
    first = next((i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b),
                 None if len(expected) == len(actual) else min(len(expected), len(actual)))
    return {"expected": expected, "actual": actual, "first_diff": first, "expected_label": draw(nasty),
            "actual_label": draw(nasty), "expected_context": draw(nasty), "actual_context": draw(nasty)}


@st.composite
def results(draw):
    evidence = draw(st.one_of(st.none(), st.fixed_dictionaries({
        "verdict": nasty, "endpoint": nasty, "request": st.one_of(st.none(), st.dictionaries(nasty, nasty, max_size=3)),
        "response": st.one_of(st.none(), nasty), "curl": st.one_of(st.none(), nasty),
        "token_diff": st.one_of(st.none(), token_diffs()),
        "metrics": st.one_of(st.none(), st.dictionaries(nasty, st.floats(allow_nan=False, allow_infinity=False), max_size=3)),
        "hypothesis": st.one_of(st.none(), st.fixed_dictionaries({"seed": st.one_of(st.none(), st.integers()),
                                                                   "example": st.dictionaries(nasty, nasty)})),
        "notes": st.lists(nasty, max_size=2)})))
    return {"check_id": draw(st.sampled_from(["E1", "E10", "M3", "T2", "X"])), "name": draw(nasty),
            "tier": draw(st.sampled_from(TIERS)), "requirement": draw(nasty), "outcome": draw(st.sampled_from(OUTCOMES)),
            "nodeid": draw(nasty), "duration_s": draw(st.floats(0, 1e4)), "message": draw(st.one_of(st.none(), nasty)),
            "evidence": evidence, "variant": draw(st.one_of(st.none(), nasty))}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(results(), max_size=4))
def test_any_valid_report_renders_safely(items):
    report = build_report(items)
    page = parse_html(render_html(report))  # parse_html asserts every element is closed in order
    assert len(page.find_all("script")) == 1
    allowed = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "h4", "span", "table",
               "thead", "tbody", "tr", "th", "td", "code", "br", "details", "summary", "section", "div", "button",
               "dl", "dt", "dd", "p", "b", "a", "pre", "small", "ul", "li", "script"}
    assert {node.tag for node in page.iter()} <= allowed
    assert json.loads(page.find("div", id="report-data").attrs["data-jsonblob"]) == report
    assert len(page.find_all("tr", "check")) == len(items)
    junit = ET.fromstring(render_junit(report).encode("utf-8"))
    assert len(junit.findall("testsuite/testcase")) == len(items)
    assert render_markdown(report).startswith("# gym-conformance: ")
