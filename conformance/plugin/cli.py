"""``gym-conformance run --endpoint URL ...``: the same suite as ``pytest --endpoint URL``, as a command.

Exit codes: 0 every MUST check passed, 1 a check failed, 2 could not run (unreachable endpoint, bad options).
"""
from __future__ import annotations

import argparse
import sys
import tempfile


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", action="append", required=True, metavar="URL",
                        help="endpoint base URL (…/v1); repeat for one server per data-parallel rank")
    parser.add_argument("--model", help="served model name (default: first id from /v1/models)")
    parser.add_argument("--api-key", help="bearer key (default: $OPENAI_API_KEY, else dummy_key)")
    parser.add_argument("--tokenizer", metavar="PATH_OR_NAME", help="local tokenizer for template-level checks")
    parser.add_argument("--rescore-model", metavar="PATH",
                        help="local copy of the trainer's weights: M24/E26 rescore with it, R8 refits to it")
    parser.add_argument("--refit-url", metavar="URL", help='R8: the endpoint\'s weight-refit hook (POST {"path"})')
    parser.add_argument("--chat-template-kwargs", metavar="JSON", help="chat_template_kwargs sent on every call")
    parser.add_argument("--gym-version", metavar="VERSION",
                        help="which NeMo Gym the client reproduces (0.4.0, 0.7.0; default: the newest verified)")
    parser.add_argument("--gym-reasoning-parser", choices=["on", "off"],
                        help="Gym's uses_reasoning_parser; must match the endpoint's reasoning parser (default: on)")
    parser.add_argument("--strict", action="store_true", help="SHOULD-level failures fail the run")
    parser.add_argument("--report", default="reports", metavar="DIR", help="report directory (default: reports/)")
    parser.add_argument("--check", action="append", default=[], metavar="ID", help="run only these check ids")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression over test names")
    parser.add_argument("--hypothesis-profile", choices=["ci", "deep"], help="drift-search profile (default: ci)")
    parser.add_argument("--hypothesis-seed", type=int, help="seed for the drift search")
    parser.add_argument("-n", dest="workers", help="pytest-xdist workers (needs pytest-xdist)")
    parser.add_argument("-v", "--verbose", action="store_true")


def pytest_args(args: argparse.Namespace) -> list[str]:
    out: list[str] = []
    for url in args.endpoint:
        out += ["--endpoint", url]
    for flag, value in (("--model", args.model), ("--api-key", args.api_key), ("--tokenizer", args.tokenizer),
                        ("--chat-template-kwargs", args.chat_template_kwargs),
                        ("--rescore-model", args.rescore_model), ("--refit-url", args.refit_url),
                        ("--gym-version", args.gym_version), ("--gym-reasoning-parser", args.gym_reasoning_parser),
                        ("--conformance-report", args.report), ("-k", args.keyword),
                        ("--hypothesis-profile", args.hypothesis_profile), ("-n", args.workers),
                        ("--hypothesis-seed", None if args.hypothesis_seed is None else str(args.hypothesis_seed))):
        if value:
            out += [flag, value]
    for check_id in args.check:
        out += ["--check", check_id]
    if args.strict:
        out.append("--conformance-strict")
    out += ["-rfEsxX", "-p", "no:cacheprovider", "-v" if args.verbose else "-q"]
    return out


def run(args: argparse.Namespace) -> int:
    import pytest

    # An empty rootdir: the user's own pytest configuration and conftests must not leak into the suite.
    with tempfile.TemporaryDirectory(prefix="gym-conformance-") as root:
        code = int(pytest.main([*pytest_args(args), "--rootdir", root, "-c", _empty_ini(root)]))
    if code in (0, 1, 2):
        return code
    print(f"gym-conformance: pytest could not run the suite (pytest exit code {code})", file=sys.stderr)
    return 2


def _empty_ini(root: str) -> str:
    path = f"{root}/pytest.ini"
    with open(path, "w") as fh:
        fh.write("[pytest]\n")
    return path
