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
