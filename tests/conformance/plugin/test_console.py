"""What ``gym-conformance run`` shows: a live display per check family on a terminal, a summary table at the end,
plain text (no escape codes, no redraws) when stdout is not a terminal, and less still with ``--quiet``."""
import io
import json
import re

import pytest
from rich.console import Console

from conformance.plugin import _console
from fixtures import fixture_path

CHATML = str(fixture_path("tiny-chatml"))
ESCAPES = re.compile(r"\x1b\[|\r")


def _report(tmp_path, results, verdict="fail"):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "report.json").write_text(json.dumps({"summary": {"verdict": verdict}, "results": results}))
    return tmp_path


RESULTS = [
    {"check_id": "E3", "name": "tokens/bundle-complete", "tier": "MUST", "outcome": "pass", "message": None},
    {"check_id": "M3", "name": "multiturn/bpe-retokenization", "tier": "MUST", "outcome": "fail",
     "message": "turn 2 prompt re-tokenized the previous generation: [26951, 3834] became [94224]\nat position 12"},
    {"check_id": "E6", "name": "tokens/usage-counts", "tier": "SHOULD", "outcome": "non_strict",
     "message": "usage off"},
    {"check_id": "E23", "name": "endpoint/x", "tier": "INFO", "outcome": "info", "message": "observed"},
]


def test_summary_counts_per_tier_and_lists_failing_checks(tmp_path):
    summary = _console.read_summary(_report(tmp_path, RESULTS))
    assert summary.verdict == "fail" and summary.counts["MUST"] == {"pass": 1, "fail": 1}
    lines = _console.plain_lines(summary)
    assert lines[0] == "gym-conformance: fail (1 pass, 1 fail, 1 non-strict, 1 info)"
    assert "  MUST: 1 pass, 1 fail" in lines and "  SHOULD: 1 non-strict" in lines
    assert ("  fail M3 [MUST] multiturn/bpe-retokenization: turn 2 prompt re-tokenized the previous generation: "
            "[26951, 3834] became [94224] at position 12") in lines
    assert lines.index("  non-strict E6 [SHOULD] tokens/usage-counts: usage off") > 3
    assert f"  json: {tmp_path / 'report.json'}" in lines
    brief = _console.plain_lines(summary, brief=True)
    assert brief[0] == lines[0] and len(brief) == 3  # verdict and the failing checks only


def test_a_report_older_than_the_run_is_not_shown(tmp_path):
    path = _report(tmp_path, RESULTS)
    assert _console.read_summary(path, since=(path / "report.json").stat().st_mtime + 60) is None
    assert _console.read_summary(tmp_path / "missing") is None


def test_rich_summary_is_a_table_with_the_verdicts_unmangled(tmp_path):
    out = io.StringIO()
    _console.render(_console.read_summary(_report(tmp_path, RESULTS)), Console(file=out, width=200))
    text = out.getvalue()
    assert "gym-conformance: FAIL" in text and "checks by tier and outcome" in text and "failing checks" in text
    assert "[26951, 3834] became [94224]" in text  # verdicts are not read as rich markup


def test_live_progress_has_a_bar_per_family_with_the_running_check():
    out = io.StringIO()
    live = _console.LiveProgress(Console(file=out, force_terminal=True, width=160))
    live.collected(["E3", "E4", "M3", "T1"])
    live.started("M3", "n::test_M3_x")
    progress = live.progress
    assert [t.description for t in progress.tasks] == ["all checks", "E endpoint", "M multi-turn", "T template"]
    assert progress.tasks[2].fields["current"] == "M3 multiturn/bpe-retokenization"
    live.finished("M3", "n::test_M3_x", "fail")
    assert progress.tasks[2].completed == 1 and "1 failed" in progress.tasks[2].fields["failed"]
    assert progress.tasks[2].fields["current"] == ""
    live.stop()
    assert "M multi-turn" in out.getvalue()


# --- the command, end to end against the zoo ---------------------------------------------------------------

def _run(zoo_url, tmp_path, *extra):
    from gym_conformance.cli import main
    return main([*extra, "run", "--endpoint", f"{zoo_url}/no-correction/v1", "--tokenizer", CHATML,
                 "--check", "E3", "--check", "M3", "--report", str(tmp_path / "r")])


def test_run_prints_plain_text_when_stdout_is_not_a_terminal(zoo_url, tmp_path, capsys):
    assert _run(zoo_url, tmp_path) == 1
    out = capsys.readouterr().out
    assert not ESCAPES.search(out), "CI logs stay free of escape codes and redraws"
    assert "gym-conformance: fail (1 pass, 1 fail)" in out and "  fail M3 [MUST] multiturn/bpe-retokenization: " in out
    assert "  MUST: 1 pass, 1 fail" in out and f"json: {tmp_path / 'r' / 'report.json'}" in out
    assert "passed" in out  # pytest's own output stays on stdout for the CI log


def test_run_quiet_prints_the_verdict_and_the_failing_checks_only(zoo_url, tmp_path, capsys):
    assert _run(zoo_url, tmp_path, "--quiet") == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("gym-conformance: fail") and len(lines) == 2 and "M3" in lines[1]
    assert "passed" in (tmp_path / "r" / "pytest.log").read_text()  # pytest's output is kept in the log


def test_run_on_a_terminal_shows_live_progress_and_the_summary_table(zoo_url, tmp_path, capsys, monkeypatch):
    screen = io.StringIO()
    monkeypatch.setattr(_console, "terminal", lambda: Console(file=screen, force_terminal=True, width=160))
    assert _run(zoo_url, tmp_path) == 1
    text = screen.getvalue()
    assert "E endpoint" in text and "M multi-turn" in text and "1 failed" in text
    assert "checks by tier and outcome" in text and "failing checks" in text and "log: " in text
    assert capsys.readouterr().out == ""  # pytest's output went to the log, not across the display
    assert "M3" in (tmp_path / "r" / "pytest.log").read_text()


def test_run_rejects_bad_options_before_starting_pytest(tmp_path, capsys):
    from gym_conformance.cli import main
    assert main(["run", "--endpoint", "http://e/v1", "--conformance-timeout", "0", "--report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gym-conformance run: error: --conformance-timeout must be a positive number of seconds, got '0'"]
    assert not (tmp_path / "report.json").exists()


@pytest.mark.parametrize("quiet", [False, True])
def test_run_could_not_run_exits_2_with_the_cause(tmp_path, capsys, quiet):
    from conformance._process import free_port
    from gym_conformance.cli import main
    argv = ["run", "--endpoint", f"http://127.0.0.1:{free_port()}/v1", "--report", str(tmp_path)]
    assert main(["--quiet", *argv] if quiet else argv) == 2
    captured = capsys.readouterr()
    assert "unreachable" in captured.err and "Traceback" not in captured.err + captured.out
    assert "gym-conformance: error (1 error)" in captured.out and "  error RUN [MUST] run/could-not-run" in captured.out
