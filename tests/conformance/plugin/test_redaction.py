"""What the plugin records of a test report carries no part of the run's API key (the end-to-end proof, an
endpoint echoing the key into every report file, is in tests/conformance/hostile_zoo)."""
from types import SimpleNamespace

import pytest

from conformance.core import REDACTED, secrets_of
from conformance.plugin._grading import _redacted

KEY = "s3cret-abcdefgh-0123"
STATE = SimpleNamespace(secrets=secrets_of(KEY))


def _report(outcome, longrepr, **extra):
    report = pytest.TestReport("suite::test_E7[x]", ("suite", 1, "test_E7"), {}, outcome, longrepr, "call",
                               sections=[("Captured stdout call", f"got {KEY}")])
    for name, value in extra.items():
        setattr(report, name, value)
    return report


def test_the_graded_result_and_what_pytest_writes_of_a_failure_are_redacted():
    result = {"message": f"HTTP 500: 'serving Bearer {KEY[:12]}'", "evidence": {
        "verdict": KEY, "response": {"error": {"message": KEY}}, "notes": [f"echo {KEY}"], "curl": None}}
    report = _redacted(_report("failed", f"E7 ... Bearer {KEY}", conformance=result), STATE)
    assert KEY[:8] not in repr(vars(report))
    assert report.longrepr == f"E7 ... Bearer {REDACTED}"
    assert report.sections == [("Captured stdout call", f"got {REDACTED}")]
    assert report.conformance["message"] == f"HTTP 500: 'serving Bearer {REDACTED}'"
    assert report.conformance["evidence"]["response"] == {"error": {"message": REDACTED}}


def test_a_harness_traceback_an_xfail_reason_and_a_skip_reason_are_redacted():
    try:
        raise KeyError(f"no field in {KEY}")
    except KeyError:
        info = pytest.ExceptionInfo.from_current()
    report = _redacted(_report("failed", info.getrepr()), STATE)
    assert isinstance(report.longrepr, str) and REDACTED in report.longrepr and KEY not in report.longrepr
    report = _redacted(_report("skipped", ("suite", 1, f"Skipped: /tokenize said {KEY}"),
                               wasxfail=f"non-strict (SHOULD): {KEY}"), STATE)
    assert report.longrepr == ("suite", 1, f"Skipped: /tokenize said {REDACTED}")
    assert report.wasxfail == f"non-strict (SHOULD): {REDACTED}"


def test_nothing_changes_without_a_secret():
    """Gym's placeholder key (the default) is no secret: a run with it records reports untouched."""
    try:
        raise KeyError("dummy_key")
    except KeyError:
        info = pytest.ExceptionInfo.from_current()
    longrepr = info.getrepr()
    report = _redacted(_report("failed", longrepr), SimpleNamespace(secrets=secrets_of("dummy_key")))
    assert report.longrepr is longrepr
    assert _redacted(_report("passed", None), None).longrepr is None  # no run state: the plugin is inert
