"""Markdown summary: pinned by a golden file (regenerate with UPDATE_GOLDEN=1 after a deliberate change)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from report_samples import build_report, simple_result

from conformance.report.markdown import render_markdown, write_markdown

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; rerun with UPDATE_GOLDEN=1 if intended"


def test_stock_vllm_summary_matches_golden(report_dict):
    check_golden("stock-vllm-report.md", render_markdown(report_dict))


def test_pipes_and_backticks_cannot_break_the_markdown():
    result = simple_result("E2", "endpoint/chat", "error", message="a | b")
    result["evidence"] = {"verdict": "body had ``` fences", "endpoint": "http://x/v1", "request": None,
                          "response": None, "curl": "echo '```'", "token_diff": None, "metrics": None,
                          "hypothesis": None, "notes": []}
    text = render_markdown(build_report([result]))
    assert "| **Error** | a \\| b |" in text
    assert "````sh\necho '```'\n````" in text


def test_write_markdown(tmp_path, passing_dict):
    path = write_markdown(passing_dict, tmp_path / "summary.md")
    assert path.read_text(encoding="utf-8").startswith("# gym-conformance: PASS\n")


def test_markdown_and_the_model_render_without_jinja2():
    """The Markdown summary ($GITHUB_STEP_SUMMARY) and the outcome vocabulary need no template engine."""
    from conformance._process import run_command

    code = ("import sys; import conformance.report.markdown, conformance.report.outcomes, conformance.report.matrix; "
            "sys.exit('jinja2' in sys.modules)")
    assert run_command([sys.executable, "-c", code]).returncode == 0
