"""The ``gym-conformance`` dispatcher: lazy subcommands, one clear line and exit 2 on bad input."""
import sys

from conformance._process import run_command
from gym_conformance.cli import COMMANDS, main


def test_unknown_command_exits_2_with_one_line(capsys):
    try:
        code = main(["frobnicate"])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid choice: 'frobnicate'" in err[0]


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_fixtures_command_verifies_the_cache(capsys):
    assert main(["fixtures", "tiny-chatml"]) == 0
    assert "tiny-chatml" in capsys.readouterr().out


def test_every_command_module_has_the_command_interface():
    import importlib

    for name, (module, _) in COMMANDS.items():
        mod = importlib.import_module(module)
        assert callable(mod.add_arguments) and callable(mod.run), name


def test_console_script_runs_from_the_venv():
    result = run_command([sys.executable, "-m", "gym_conformance", "fixtures", "--bogus"], capture=True, timeout=120)
    assert result.returncode == 2 and "unrecognized arguments: --bogus" in result.stderr


def _option_help(help_text: str) -> dict[str, str]:
    """``--flag`` -> its whole entry (the flag line and the indented lines under it) in an argparse help text."""
    blocks: list[list[str]] = []
    for line in help_text.splitlines():
        if line.startswith("  -"):
            blocks.append([line.strip()])
        elif blocks and line.startswith("   ") and line.strip():
            blocks[-1].append(line.strip())
        else:
            blocks.append([])
    entries = {}
    for block in filter(None, blocks):
        for flag in block[0].split("  ")[0].replace(",", " ").split():
            if flag.startswith("-"):
                entries[flag] = " ".join(block)
    return entries


def test_every_command_help_lists_its_options_with_defaults():
    import argparse

    from gym_conformance.cli import command_parser

    for name in COMMANDS:
        parser = command_parser(name)
        entries = _option_help(parser.format_help())
        for action in parser._actions:
            if not action.option_strings or action.default in (None, False, [], argparse.SUPPRESS):
                continue
            flag = action.option_strings[-1]
            assert flag in entries, (name, flag)
            assert "default" in entries[flag], f"gym-conformance {name} --help: {flag} does not state its default"


def test_help_exits_0_and_states_defaults(capsys):
    try:
        main(["run", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--conformance-timeout SECONDS per-request timeout, also the retry budget for 429/5xx (default: 60)" in out
    assert "--conformance-strict, --strict" in out and "--debug" in out and "--quiet" in out


def test_an_error_is_one_line_and_exit_2_and_a_traceback_only_with_debug(monkeypatch, capsys):
    import pytest

    import gym_conformance.cli as cli

    def boom(name, args):
        raise RuntimeError("the engine fell over\nwith a second line")

    monkeypatch.setattr(cli, "cmd_run", boom)
    assert main(["fixtures", "tiny-chatml"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gym-conformance fixtures: error: RuntimeError: the engine fell over with a second line "
                   "(--debug shows the traceback)"]
    for argv in (["--debug", "fixtures", "tiny-chatml"], ["fixtures", "--debug", "tiny-chatml"]):
        with pytest.raises(RuntimeError, match="the engine fell over"):
            main(argv)


def test_global_flags_go_before_or_after_the_command(monkeypatch):
    import gym_conformance.cli as cli

    seen = []
    monkeypatch.setattr(cli, "cmd_run", lambda name, args: seen.append((args.quiet, args.debug)) or 0)
    assert main(["-q", "fixtures"]) == 0 and main(["fixtures", "--quiet"]) == 0 and main(["fixtures"]) == 0
    assert seen == [(True, False), (True, False), (False, False)]


def test_demo_judges_the_reference_and_stock_vllm_through_gym_conformance_run(monkeypatch, tmp_path, capsys):
    # No vLLM here: the servers are stand-ins; what is checked is the two suites' command lines, parsed by run's
    # parser. The real thing runs in tests/conformance/report/test_browser.py (marked vllm).
    import contextlib

    import gym_conformance.demo as demo
    from conformance._process import Finished
    from gym_conformance.cli import command_parser

    started = []

    @contextlib.contextmanager
    def server(argv, port, log_path=None):
        started.append(argv)
        yield type("Server", (), {"url": f"http://127.0.0.1:{port}"})()

    commands = []
    monkeypatch.setattr(demo, "ServerProcess", server)
    monkeypatch.setattr(demo, "run_command", lambda argv, cwd=None: commands.append(argv) or Finished(0, "", ""))
    assert main(["demo", "--report-dir", str(tmp_path)]) == 0
    assert "gym_conformance" in started[0] and "vllm.entrypoints.openai.api_server" in started[1]
    reports = []
    for suite in commands:
        assert suite[1:4] == ["-m", "gym_conformance", "run"]
        args = command_parser("run").parse_args(suite[4:])
        assert args.endpoint[0].endswith("/v1")
        reports.append(args.conformance_report)
    assert reports == [str(tmp_path / "reference"), str(tmp_path / "stock-vllm")]
    assert "reference exit code 0" in capsys.readouterr().out
    assert main(["--quiet", "demo", "--report-dir", str(tmp_path)]) == 0
    assert commands[2][3] == "--quiet" and capsys.readouterr().out == ""


def test_selftest_progress_is_plain_lines_off_a_terminal_and_its_summary_a_table_on_one(capsys, tmp_path):
    import io
    import re

    from rich.console import Console

    from conformance.report.matrix import Matrix
    from gym_conformance.selftest import _Progress, _render

    with _Progress(Console(file=io.StringIO()), 2, live=False, quiet=False) as progress:
        progress.started("reference")
        progress.finished("reference", 0)
    out = capsys.readouterr().out
    assert out == "selftest: [1/2] reference: suite exit 0\n" and not re.search(r"\x1b\[|\r", out)
    screen = io.StringIO()
    cells = {"reference": {"M3": "pass"}, "no-correction": {"M3": "pass"}}
    matrix = Matrix(["reference", "no-correction"], ["M3"], cells)
    _render(Console(file=screen, width=160), matrix, matrix.rows, {"reference": 0, "no-correction": 0},
            ["no-correction: expected to fail ['M3'] but they passed or did not run"], {}, "2 endpoints; 1 mismatches",
            tmp_path)
    text = screen.getvalue()
    assert "no-correction" in text and "expected to fail ['M3']" in text and "selftest: 2 endpoints" in text
    assert f"md: {tmp_path / 'matrix.md'}" in text
