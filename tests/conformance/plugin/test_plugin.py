"""The pytest plugin end to end through pytester: inert without --endpoint, the suite from an empty directory,
tier grading, report.json + junit.xml, and broken endpoints giving clear causes with exit codes 0/1/2."""
import contextlib
import json
import xml.etree.ElementTree as ET

import pytest

from fixtures import fixture_path

from ..hostile import Hostile, serve

pytest_plugins = ["pytester"]
CHATML = str(fixture_path("tiny-chatml"))


def _run(pytester, url, *args):
    return pytester.runpytest("--endpoint", url, "--tokenizer", CHATML, "-p", "no:cacheprovider", *args)


def _report(pytester):
    return json.loads((pytester.path / "reports" / "report.json").read_text())


def test_inert_without_endpoint(pytester):
    pytester.makepyfile("def test_own():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "reports").exists()


def test_correct_endpoint_passes_from_an_empty_directory(pytester, zoo_url):
    result = _run(pytester, f"{zoo_url}/reference/v1")
    assert result.ret == 0, result.stdout.str()[-3000:]
    report = _report(pytester)
    assert report["schema"] == "gym-conformance/report/1" and report["summary"]["verdict"] == "pass"
    assert report["environment"]["hypothesis_profile"] == "ci" and report["target"]["model"] == "tiny"
    ids = {r["check_id"] for r in report["results"]}
    assert {"E3", "M1", "M3", "M24", "E20", "T1", "M17"} <= ids
    assert all(r["outcome"] in ("pass", "info", "skipped") for r in report["results"])
    props = {p.get("name"): p.get("value") for p in ET.parse(pytester.path / "reports" / "junit.xml").iter("property")}
    assert props.get("check_id") and props.get("tier") in ("MUST", "SHOULD", "INFO")


def test_should_failure_is_non_strict_unless_strict(pytester, zoo_url):
    url = f"{zoo_url}/usage-wrong/v1"
    lenient = _run(pytester, url, "--check", "E6", "--check", "E3")
    strict = _run(pytester, url, "--check", "E6", "--conformance-strict")
    assert lenient.ret == 0
    lenient.stdout.fnmatch_lines(["*non-strict (SHOULD): E6*"])
    assert strict.ret == 1
    result = {r["check_id"]: r for r in _report(pytester)["results"]}["E6"]
    assert result["outcome"] == "fail" and "usage" in result["message"]


def test_must_failure_exits_1_with_token_evidence(pytester, zoo_url):
    result = _run(pytester, f"{zoo_url}/no-correction/v1", "--check", "M3")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*M3 multiturn/bpe-retokenization [[]MUST[]] *re-tokenized the previous generation*",
                                 "*reproduce: curl*"])
    (m3,) = _report(pytester)["results"]
    diff = m3["evidence"]["token_diff"]
    assert m3["outcome"] == "fail" and diff["first_diff"] is not None and diff["expected"] != diff["actual"]


def test_endpoint_down_exits_2_with_one_line(pytester):
    from conformance._process import free_port
    result = _run(pytester, f"http://127.0.0.1:{free_port()}/v1")
    assert result.ret == 2
    assert "unreachable" in result.stderr.str() and "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("args, words", [(["--check", "X99"], "unknown check id"),
                                         (["--check", "E12"], "not implemented"),
                                         (["--conformance-timeout", "-1"], "positive number"),
                                         (["--refit-url", "http://h/reload"], "needs --rescore-model"),
                                         (["--refit-url", "h/reload", "--rescore-model", CHATML], "not an http(s) URL")])
def test_bad_options_exit_2(pytester, zoo_url, args, words):
    # options are validated in pytest_configure, which pytester can only observe from a subprocess
    result = pytester.runpytest_subprocess("--endpoint", f"{zoo_url}/reference/v1", "-p", "no:cacheprovider", *args)
    assert result.ret == 2 and words in result.stderr.str()
    assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize("broken, cause", [
    ("5xx", "HTTP 503 after"),
    ("malformed", "not JSON"),
    ("partial-bundle", "missing: generation_log_probs"),  # a mutant: a contract defect, not a transport one
    ("slow", "timeout"),
])
def test_broken_endpoint_fails_with_the_cause(pytester, zoo_url, broken, cause):
    with contextlib.ExitStack() as stack:
        url = f"{zoo_url}/{broken}/v1" if broken == "partial-bundle" else \
            stack.enter_context(serve(Hostile(broken))) + "/v1"
        result = _run(pytester, url, "--check", "E3", "--conformance-timeout", "1",
                      "--model", "tiny" if broken == "partial-bundle" else "m")
    assert result.ret == 1
    out = result.stdout.str()
    assert cause in out and "Traceback" not in out
    (e3,) = _report(pytester)["results"]
    assert e3["outcome"] == "fail" and cause in e3["message"]


@pytest.mark.slow  # spawns a pytest with two more workers: make test runs it, make test-fast does not
def test_xdist_workers_report_every_result(pytester, zoo_url):
    pytest.importorskip("xdist")
    result = pytester.runpytest_subprocess("--endpoint", f"{zoo_url}/reference/v1", "--tokenizer", CHATML,
                                           "-p", "no:cacheprovider", "-n", "2", "--check", "E3", "--check", "E4",
                                           "--check", "M3", "--check", "M5")
    assert result.ret == 0, result.stdout.str()[-2000:]
    report = _report(pytester)
    assert sorted(r["check_id"] for r in report["results"]) == ["E3", "E4", "M3", "M5", "M5"]
    # a check with several variants reports which one each row is
    assert sorted(r["variant"] for r in report["results"] if r["check_id"] == "M5") == ["across-tools", "across-user"]
    assert all(r["variant"] is None for r in report["results"] if r["check_id"] != "M5")


def test_cli_run_uses_the_same_suite(zoo_url, tmp_path, capsys):
    from gym_conformance.cli import main
    url = f"{zoo_url}/no-correction/v1"
    ok = main(["run", "--endpoint", url, "--check", "E3", "--report", str(tmp_path / "a")])
    bad = main(["run", "--endpoint", url, "--tokenizer", CHATML, "--check", "M3", "--report", str(tmp_path / "b")])
    assert (ok, bad) == (0, 1)
    assert json.loads((tmp_path / "b" / "report.json").read_text())["summary"]["verdict"] == "fail"


def test_cli_run_passes_every_suite_option_through():
    import argparse

    from conformance.plugin.cli import add_arguments, pytest_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--endpoint", "http://e/v1", "--rescore-model", "/w", "--refit-url", "http://e/reload",
                              "--tokenizer", "/t", "--chat-template-kwargs", "{}", "--strict", "--check", "R8"])
    argv = pytest_args(args)
    for flag, value in (("--rescore-model", "/w"), ("--refit-url", "http://e/reload"), ("--tokenizer", "/t"),
                        ("--check", "R8")):
        assert argv[argv.index(flag) + 1] == value
    assert "--conformance-strict" in argv


def test_an_aborted_run_still_leaves_a_loadable_report_with_the_cause(pytester, chatml_ref):
    # Could-not-run is exit 2 and one "error" result naming the cause; the report model loads it.
    from conformance.report import load

    result = pytester.runpytest("--endpoint", "http://127.0.0.1:9/v1", "-p", "no:cacheprovider")
    assert result.ret == 2
    report = load(pytester.path / "reports" / "report.json")
    assert report.summary.verdict == "error"
    (error,) = [r for r in report.results if r.outcome == "error"]
    assert "unreachable" in error.message


def test_no_run_inherits_an_earlier_runs_state(pytester, zoo_url):
    # In-process runs (pytester, IDEs) share the plugin module: the run's state lives in a session object on each
    # run's own plugin manager, so an aborted run leaves nothing behind for the next one.
    import ast
    import inspect

    import conformance.plugin
    from conformance.plugin import _grading

    aborted = pytester.runpytest("--endpoint", "http://127.0.0.1:9/v1", "-p", "no:cacheprovider")
    assert aborted.ret == 2 and _report(pytester)["summary"]["verdict"] == "error"
    ok = pytester.runpytest("--endpoint", f"{zoo_url}/reference/v1", "--check", "E3", "-p", "no:cacheprovider")
    assert ok.ret == 0
    report = _report(pytester)
    assert report["summary"]["verdict"] == "pass" and [r["check_id"] for r in report["results"]] == ["E3"]
    for module in (conformance.plugin, _grading):
        body = [n for n in ast.parse(inspect.getsource(module)).body if isinstance(n, (ast.Assign, ast.AnnAssign))]
        assigned = [t.id for n in body for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                    if isinstance(t, ast.Name)]
        mutable = [n for n in assigned if n != "__all__" and isinstance(getattr(module, n), (dict, list, set))]
        assert mutable == [], f"{module.__name__} holds module-level mutable state: {mutable}"


def test_the_session_is_registered_for_the_run_and_gone_after_it(pytester, zoo_url):
    seen = []

    class Probe:
        def pytest_sessionstart(self, session):
            seen.append(session.config.pluginmanager.get_plugin("gym-conformance-session"))

    pytester.runpytest("--endpoint", f"{zoo_url}/reference/v1", "--check", "E1", "-p", "no:cacheprovider",
                       plugins=[Probe()])
    (session,) = seen
    assert session is not None and session.settings.endpoints == (f"{zoo_url}/reference/v1",)
    assert session.config.pluginmanager.get_plugin("gym-conformance-session") is None  # unregistered at the end
