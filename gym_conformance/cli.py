"""``gym-conformance <command> ...``: each command lives in its own module and is imported lazily.

A command module exposes ``add_arguments(parser)`` and ``run(args) -> int`` (the exit code).
Exit codes follow the harness convention: 0 success, 1 a check failed, 2 could not run / bad input.
Global flags (before or after the command): ``--quiet`` (no progress display, the shortest summary) and
``--debug`` (a traceback instead of the one-line error). Every ``--help`` states the options' defaults.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("reference_impl.server.cli", "run the reference OpenAI-compatible server with on-policy corrections"),
    "fixtures": ("fixtures.cli", "build or verify the offline fixture models"),
    "run": ("conformance.plugin.cli", "run the conformance suite against an endpoint (same as pytest --endpoint URL)"),
    "report": ("conformance.report.cli", "render HTML / JUnit / Markdown from a report.json; `report compare` "
                                         "puts runs side by side"),
    "schema": ("conformance.plugin.schema_cli", "print the published JSON Schema of a document this tool writes"),
    "selftest": ("gym_conformance.selftest", "run the suite against the reference and every mutant; check the matrix"),
    "demo": ("gym_conformance.demo", "serve a fixture model with the reference server and run the suite against it"),
    "train": ("reference_impl.grpo.cli", "train a policy with the reference GRPO loop through the reference server "
                                         "on a benchmark task"),
    "env": ("reference_impl.envs.cli", "serve a benchmark task as a NeMo Gym environment, or write its rows"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one clear line and exit code 2, as argparse does, without the usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults formatter, without "(default: None)" noise or a second mention of a stated default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS) or not action.option_strings:
            return text
        return text + " (default: %(default)s)"


def _global_flags() -> argparse.ArgumentParser:
    flags = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a flag given before the command is not reset by the command's parser, nor the other way round
    flags.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the traceback of an error instead of one line")
    flags.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="no progress display; plain, short output")
    return flags


def command_parser(name: str) -> argparse.ArgumentParser:
    """The parser of one command (its module imported now, and only now)."""
    module = importlib.import_module(COMMANDS[name][0])
    parser = _Parser(prog=f"gym-conformance {name}", description=COMMANDS[name][1], parents=[_global_flags()],
                     formatter_class=_Help)
    module.add_arguments(parser)
    for action in parser._actions:  # an option a module gave no help still shows its default
        if not action.help and action.option_strings and action.default not in (None, False, [], argparse.SUPPRESS):
            action.help = "(default: %(default)s)"
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _Parser(prog="gym-conformance", description=__doc__.splitlines()[0], parents=[_global_flags()],
                     formatter_class=_Help)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    at = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), len(argv))
    top = parser.parse_args(argv[:at + 1])  # global flags and the command name; help and unknown commands exit
    if top.command is None:
        parser.print_help()
        return 2
    debug = getattr(top, "debug", False)
    try:
        cmd = command_parser(top.command)
        args = cmd.parse_args(argv[at + 1:])
        args.debug = debug = debug or getattr(args, "debug", False)
        args.quiet = getattr(top, "quiet", False) or getattr(args, "quiet", False)
        return int(cmd_run(top.command, args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"gym-conformance {top.command}: interrupted", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one line and exit 2; the traceback only with --debug
        if debug:
            raise
        text = " ".join(str(exc).split()) or "no message"
        print(f"gym-conformance {top.command}: error: {type(exc).__name__}: {text} (--debug shows the traceback)",
              file=sys.stderr)
        return 2


def cmd_run(name: str, args: argparse.Namespace) -> int:
    return importlib.import_module(COMMANDS[name][0]).run(args)


if __name__ == "__main__":
    sys.exit(main())
