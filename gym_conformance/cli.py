"""``gym-conformance <command> ...``: each command lives in its own module and is imported lazily.

A command module exposes ``add_arguments(parser)`` and ``run(args) -> int`` (the exit code).
Exit codes follow the harness convention: 0 success, 1 a check failed, 2 could not run / bad input.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("reference_impl.server.cli", "run the reference OpenAI-compatible server with on-policy corrections"),
    "fixtures": ("fixtures.cli", "build or verify the offline fixture models"),
    "run": ("conformance.plugin.cli", "run the conformance suite against an endpoint (same as pytest --endpoint URL)"),
    "report": ("conformance.report.cli", "render HTML / JUnit / Markdown from a report.json"),
    "selftest": ("gym_conformance.selftest", "run the suite against the reference and every mutant; check the matrix"),
    "demo": ("gym_conformance.demo", "serve a fixture model with the reference server and run the suite against it"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one clear line and exit code 2, as argparse does, without the usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _Parser(prog="gym-conformance", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] not in COMMANDS:
        args = parser.parse_args(argv)  # prints help / errors for unknown commands
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    cmd = _Parser(prog=f"gym-conformance {argv[0]}", description=COMMANDS[argv[0]][1])
    module.add_arguments(cmd)
    return int(module.run(cmd.parse_args(argv[1:])) or 0)


if __name__ == "__main__":
    sys.exit(main())
