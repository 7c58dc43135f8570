"""``gym-conformance report``: re-render from report.json; bad input → one stderr line, exit 2, no files."""
from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET

import pytest

from conformance._process import run_command
from gym_conformance.cli import COMMANDS, main


def run(capsys, *argv):
    code = main(["report", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_registered_command():
    assert COMMANDS["report"][0] == "conformance.report.cli"


def test_renders_all_three(tmp_path, capsys, report_file):
    html, junit, md = tmp_path / "out.html", tmp_path / "junit.xml", tmp_path / "summary.md"
    code, out, err = run(capsys, report_file, "--html", html, "--junit", junit, "--markdown", md)
    assert (code, err) == (0, "")
    assert "<!DOCTYPE html>" in html.read_text() and ET.parse(junit).getroot().tag == "testsuites"
    assert md.read_text().startswith("# gym-conformance: FAIL")
    assert out.splitlines() == [f"html: {html}", f"junit: {junit}", f"markdown: {md}",
                                "verdict: fail (4 pass, 1 fail, 1 non_strict, 1 info, 1 skipped)"]


def test_default_output_is_html_next_to_json(capsys, report_file):
    code, out, _ = run(capsys, report_file)
    assert code == 0 and report_file.with_suffix(".html").exists()
    assert out.startswith(f"html: {report_file.with_suffix('.html')}")


@pytest.mark.parametrize("content, words", [
    (None, "cannot read"),
    ("{not json", "not valid JSON (line 1, column 2"),
    ('{"schema": "gym-conformance/report/1"}', "invalid report:"),
    (b"\xff\xfe\x00", "cannot read"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, content, words):
    source = tmp_path / "report.json"
    if isinstance(content, bytes):
        source.write_bytes(content)
    elif content is not None:
        source.write_text(content)
    out_html = tmp_path / "out.html"
    code, out, err = run(capsys, source, "--html", out_html, "--junit", tmp_path / "j.xml")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("gym-conformance report: error:") and words in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if content is None else ["report.json"])


def test_validation_error_names_file_and_field(tmp_path, capsys, report_dict):
    report_dict["results"][5]["evidence"]["token_diff"]["first_diff"] = "3"
    source = tmp_path / "r.json"
    source.write_text(json.dumps(report_dict))
    code, _, err = run(capsys, source, "--junit", tmp_path / "j.xml")
    assert code == 2
    assert err.strip() == (f"gym-conformance report: error: invalid report: {source}: "
                           "results[5].evidence.token_diff.first_diff: Input should be a valid integer, got str '3'")
    assert not (tmp_path / "j.xml").exists()


def test_unusable_outputs_exit_2_before_writing(tmp_path, capsys, report_file):
    html = tmp_path / "ok.html"
    code, _, err = run(capsys, report_file, "--html", html, "--junit", tmp_path / "missing" / "j.xml")
    assert code == 2 and "folder" in err and not html.exists()
    code, _, err = run(capsys, report_file, "--html", report_file)
    assert code == 2 and "would overwrite the input report" in err
    assert json.loads(report_file.read_text())["schema"] == "gym-conformance/report/1"
    code, _, err = run(capsys, report_file, "--html", html, "--markdown", html)
    assert code == 2 and "both write" in err


def test_console_entry_point_exit_codes(tmp_path, report_file):
    ok = run_command([sys.executable, "-m", "gym_conformance.cli", "report", str(report_file), "--junit",
                      str(tmp_path / "j.xml")], capture=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    bad = run_command([sys.executable, "-m", "gym_conformance.cli", "report", str(tmp_path / "nope.json")],
                      capture=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
