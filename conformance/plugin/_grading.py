"""Grading and reporting hooks of the plugin: tier-aware outcomes, typed evidence, report.json at the end.

Outcomes follow the autobahn legend: pass / fail (MUST) / non_strict (SHOULD failed, run still passes unless
``--conformance-strict``) / info / skipped / error. The graded result rides on the test report as the
``conformance`` attribute, which pytest's own report serialisation carries across pytest-xdist workers.
"""
from __future__ import annotations

import time
from typing import Any

import pytest

from ..core import CATALOGUE, INFO, MUST, CheckFailure, EndpointStopped, redact, redact_text


SESSION = "gym-conformance-session"  # the run's state: the plugin registers it under this name in pytest_configure


def _state(config: pytest.Config):
    return config.pluginmanager.get_plugin(SESSION)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _longrepr(exc: CheckFailure) -> str:
    """What the terminal shows for a failed check: verdict, requirement, reproduction; no harness traceback."""
    lines = [f"{exc.check_id} {exc.name} [{exc.tier}] {exc.verdict}", f"  requirement: {exc.requirement}"]
    ev = exc.evidence
    if ev.token_diff is not None:
        d = ev.token_diff
        lines.append(f"  {d.expected_label}: …{d.expected_context}")
        lines.append(f"  {d.actual_label}: …{d.actual_context}")
    for note in ev.notes[:3]:
        lines.append(f"  note: {note}")
    if ev.hypothesis:
        lines.append(f"  minimal example: {ev.hypothesis.get('example')}")
    if ev.curl:
        lines.append(f"  reproduce: {ev.curl[:600]}")
    return "\n".join(lines)


def _redacted(report: pytest.TestReport, state) -> pytest.TestReport:
    """The report with the run's API key redacted from all it carries: the graded result (report.json, HTML,
    Markdown), the failure text pytest writes (terminal, pytest.log, junit.xml), the xfail reason and the captured
    output. The one place a recorded result meets the redaction: an endpoint may echo the key in anything quoted."""
    secrets = getattr(state, "secrets", ())
    if not secrets:
        return report
    if isinstance(report.longrepr, tuple):  # a skip: (path, line, reason)
        report.longrepr = redact(report.longrepr, secrets)
    elif report.longrepr is not None:
        text = str(report.longrepr)
        if redact_text(text, secrets) != text:
            report.longrepr = redact_text(text, secrets)
    if isinstance(getattr(report, "wasxfail", None), str):
        report.wasxfail = redact_text(report.wasxfail, secrets)
    report.sections = [(title, redact_text(content, secrets)) for title, content in report.sections]
    if getattr(report, "conformance", None) is not None:
        report.conformance = redact(report.conformance, secrets)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    state = _state(item.config)
    mark = item.get_closest_marker("conformance_check")
    if state is None or mark is None or not (report.when == "call" or (report.when == "setup" and not report.passed)):
        return _redacted(report, state)
    from . import _INFO, _MEASURED
    spec = CATALOGUE[mark.args[0]]
    from ..checks import CHECKS
    # checks with several variants (M1, M5) get one row each: the report says which one
    variant = mark.args[1] if len(mark.args) > 1 and len(CHECKS.get(spec.id, ())) > 1 else None
    if mark.kwargs.get("loop"):
        variant = "dumps"  # a loop check, judged from the loop's dumps (R8 has an endpoint form too)
    result: dict[str, Any] = {"check_id": spec.id, "name": spec.name, "tier": spec.tier,
                              "requirement": spec.requirement, "outcome": "pass", "nodeid": report.nodeid,
                              "duration_s": round(report.duration, 4), "message": None, "evidence": None,
                              "variant": variant}
    exc = call.excinfo.value if call.excinfo is not None else None
    if report.passed:
        measured = item.stash.get(_MEASURED, None)
        if measured is not None:  # a passing check with figures (R10's throughput and latency)
            result.update(message=measured.verdict, evidence=measured.to_dict())
        info = item.stash.get(_INFO, None)
        if info is not None or spec.tier == INFO:
            result["outcome"] = "info"
            result["message"] = info.verdict if info is not None else "observed: nothing to report"
            result["evidence"] = info.evidence.to_dict() if info is not None else None
    elif report.skipped:
        result.update(outcome="skipped", message=_skip_reason(report))
    elif isinstance(exc, CheckFailure):
        result.update(tier=exc.tier, message=exc.verdict, evidence=exc.evidence.to_dict())
        report.longrepr = _longrepr(exc)
        if exc.tier != MUST and not state.strict:
            result["outcome"] = "non_strict"
            report.outcome = "skipped"  # reported as xfail: visible, but the run still passes
            report.wasxfail = f"non-strict ({exc.tier}): {exc.check_id} {exc.verdict}"
        else:
            result["outcome"] = "fail"
    elif isinstance(exc, EndpointStopped):  # the run stopped driving the endpoint: an error naming why, one line
        result.update(outcome="error", message=str(exc))
        report.longrepr = f"{spec.id} not judged: {exc}"
    else:  # a harness error or a failing fixture: reported as such, graded "error"
        result.update(outcome="error", message=f"{type(exc).__name__}: {exc}" if exc else str(report.longrepr)[:500])
    report.conformance = result
    return _redacted(report, state)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = _state(session.config)
    if state is None:
        return
    stopped = next((ctx.client.stopped for ctx in state.contexts.values() if ctx.client.stopped), None)
    state.close()
    if stopped and session.exitstatus in (0, 1):
        session.exitstatus = 2  # could not run to the end: the 0/1/2 rule's "could not run"
    if state.is_worker:
        return
    interrupted = state.interrupted or (exitstatus == 2 and not stopped)
    write_report(state, state.aborted or (f"the run was interrupted ({state.interrupted or 'exit status 2'})"
                                          if interrupted else None) or (f"stopped: {stopped}" if stopped else None))


def write_report(state, aborted: str | None = None) -> None:
    """Write report.json/report.html for the run so far; ``aborted`` names why it could not run."""
    from ._reporting import build, write
    report = build(state.results, started_at=state.started or "",
                   duration_s=time.monotonic() - (state.t0 or time.monotonic()),
                   endpoints=state.endpoints, dumps=state.dumps, model=state.model or _resolved_model(state),
                   tokenizer=state.tokenizer,
                   strict=state.strict, hypothesis_profile=state.profile, aborted=aborted)
    report = redact(report, state.secrets)  # the could-not-run cause and the model id the endpoint listed, too
    if not report["started_at"]:
        report["started_at"] = report["finished_at"]
    state.report_path, state.report_problems = write(report, state.report_dir)
    state.verdict = report["summary"]["verdict"]
    state.counts = report["summary"]["counts"]


def _resolved_model(state) -> str | None:
    for ctx in state.contexts.values():
        if ctx.client.model:
            return ctx.client.model
    return None


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = _state(config)
    path = getattr(state, "report_path", None)
    if state is None or path is None:
        return
    counts = ", ".join(f"{v} {k}" for k, v in state.counts.items() if v)
    terminalreporter.write_sep("=", f"gym-conformance: {state.verdict} ({counts or 'no checks run'})")
    terminalreporter.write_line(f"report: {path}")
    for problem in state.report_problems:
        terminalreporter.write_line(f"warning: {problem}")
