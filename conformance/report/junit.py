"""JUnit XML from ``report.json``, so CI dashboards get the verdicts even when pytest's ``--junitxml``
was not used (or the run happened elsewhere): one ``<testcase>`` per result.

    write_junit(load("reports/report.json"), "reports/junit.xml")

Mapping: fail → ``<failure>`` whose message is the verdict; error → ``<error>``; skipped →
``<skipped>``; pass, non-strict and info are passing testcases (non-strict is still conformant; its
verdict goes to ``<system-out>``). Each testcase carries ``check_id``, ``tier`` and ``outcome``
properties; classname/name follow pytest's own mangling of the node id so histories line up.
"""
from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ._diffview import diff_text, diff_view
from ._io import write_atomic
from .model import Report, Result

__all__ = ["render_junit", "write_junit"]

# XML 1.0 forbids most control characters even escaped; a response body may well contain them.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _ILLEGAL_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _names(result: Result) -> tuple[str, str]:
    """``suite/test_m.py::Test::test_x[ep0]`` → (``suite.test_m.Test``, ``test_x[ep0]``), as pytest does."""
    if not result.nodeid:
        variant = f" [{result.variant}]" if result.variant else ""
        return "gym-conformance", f"{result.check_id} {result.name}{variant}"
    parts = result.nodeid.split("::")
    module = re.sub(r"\.py$", "", parts[0]).replace("/", ".")
    return ".".join([module, *parts[1:-1]]), parts[-1] if len(parts) > 1 else result.check_id


def _body(result: Result) -> str:
    """The failure text CI shows inline: verdict, requirement, windowed token diff, how to reproduce."""
    lines = [f"{result.check_id} {result.name} ({result.tier}): {result.outcome}",
             f"requirement: {result.requirement}"]
    ev = result.evidence
    if result.message and (ev is None or result.message != ev.verdict):
        lines.append(f"message: {result.message}")
    if ev is not None:
        lines += [f"verdict: {ev.verdict}", f"endpoint: {ev.endpoint}"]
        if ev.token_diff is not None:
            view = diff_view(ev.token_diff)
            lines += ["token diff:", *("  " + line for line in diff_text(view))]
            lines += [f"  {side.label} context: {side.context!r}" for side in view.sides]
        if ev.metrics:
            lines.append("metrics: " + ", ".join(f"{key}={value}" for key, value in ev.metrics.items()))
        if ev.hypothesis is not None:
            lines.append(f"hypothesis seed: {ev.hypothesis['seed']}")
        lines += [f"note: {note}" for note in ev.notes]
        if ev.curl:
            lines.append(f"reproduce: {ev.curl}")
    return "\n".join(lines)


def _testcase(suite: ET.Element, result: Result) -> None:
    classname, name = _names(result)
    case = ET.SubElement(suite, "testcase", classname=_clean(classname), name=_clean(name),
                         time=f"{result.duration_s:.3f}")
    props = ET.SubElement(case, "properties")
    for key, value in (("check_id", result.check_id), ("tier", result.tier), ("outcome", result.outcome)):
        ET.SubElement(props, "property", name=key, value=_clean(value))
    headline = result.evidence.verdict if result.evidence else (result.message or result.outcome)
    if result.outcome in ("fail", "error"):
        tag = "failure" if result.outcome == "fail" else "error"
        element = ET.SubElement(case, tag, message=_clean(headline), type=f"{result.tier} {result.check_id}")
        element.text = _clean(_body(result))
    elif result.outcome == "skipped":
        ET.SubElement(case, "skipped", message=_clean(result.message or "skipped"))
    elif result.outcome in ("non_strict", "info") and (result.message or result.evidence):
        ET.SubElement(case, "system-out").text = _clean(_body(result))


def render_junit(report: Report | dict[str, Any]) -> str:
    """JUnit XML (``<testsuites>`` with one ``<testsuite name="gym-conformance">``) as a string."""
    if not isinstance(report, Report):
        report = Report.from_dict(report)
    counts = report.summary.counts
    root = ET.Element("testsuites", name="gym-conformance")
    suite = ET.SubElement(root, "testsuite", name="gym-conformance", tests=str(len(report.results)),
                          failures=str(counts["fail"]), errors=str(counts["error"]),
                          skipped=str(counts["skipped"]), time=f"{report.duration_s:.3f}",
                          timestamp=_clean(report.started_at))
    props = ET.SubElement(suite, "properties")
    target = report.target
    suite_props = [("endpoint", endpoint) for endpoint in target.endpoints] + [
        (f"dump.{kind}", path) for kind, path in target.dumps.items()] + [
        ("model", target.model or ""), ("tokenizer", target.tokenizer or ""),
        ("strict", str(target.strict).lower()), ("verdict", report.summary.verdict),
        ("tool_version", report.tool_version)]
    for key, value in suite_props:
        ET.SubElement(props, "property", name=key, value=_clean(value))
    for result in report.results:
        _testcase(suite, result)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(report: Report | dict[str, Any], path: str | os.PathLike[str]) -> Path:
    return write_atomic(path, render_junit(report))
