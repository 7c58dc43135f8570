"""``gym-conformance run --endpoint URL ...``: the same suite as ``pytest --endpoint URL``, as a command.

Its arguments are the plugin's options, generated from the one settings table (``_settings``), so every
plugin flag works here with the same meaning (``--strict`` and ``--report`` are accepted as aliases of
``--conformance-strict`` and ``--conformance-report``). On a terminal (and without ``--quiet``) it shows a live
progress display per check family and a summary table, and pytest's own output goes to ``pytest.log`` in the
report directory; otherwise pytest's output and a plain-text summary go to stdout.

Exit codes: 0 every MUST check passed, 1 a check failed, 2 could not run (unreachable endpoint, bad options).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from ._settings import OPTIONS, SETTINGS_OWNERS, SettingsError, add_run_arguments, pytest_args, resolve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import pytest

    from . import _console

    try:  # the plugin validates again; failing here spares starting pytest for a typo
        settings = resolve({o.name: getattr(args, o.dest) for o in OPTIONS if o.owner in SETTINGS_OWNERS}, {},
                           os.environ)
    except SettingsError as exc:
        print(f"gym-conformance run: error: {exc}", file=sys.stderr)
        return 2
    quiet = bool(getattr(args, "quiet", False))
    console = None if quiet else _console.terminal()
    report_dir = Path.cwd() / settings.report_dir
    log = report_dir / "pytest.log" if quiet or console is not None else None
    argv = [*pytest_args(args), "-rfEsxX", "-p", "no:cacheprovider", *([] if args.verbose else ["-q"])]
    started = time.time()
    # An empty rootdir: the user's own pytest configuration and conftests must not leak into the suite.
    with tempfile.TemporaryDirectory(prefix="gym-conformance-") as root, contextlib.ExitStack() as stack:
        argv += ["--rootdir", root, "-c", _empty_ini(root)]
        plugins = []
        if log is not None:  # pytest's own output (failure details included) goes to the log, not the terminal
            log.parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(contextlib.redirect_stdout(stack.enter_context(log.open("w"))))
        if console is not None:
            plugins.append(_console.LiveProgress(console))
        code = int(pytest.main(argv, plugins=plugins))
    summary = _console.read_summary(report_dir, since=started - 1, extra=(log,) if log else ())
    if summary is not None and console is not None:
        _console.render(summary, console)
    elif summary is not None:
        print("\n".join(_console.plain_lines(summary, brief=quiet)), flush=True)
    if console is not None:
        console.file.flush()
    if code in (0, 1, 2):
        return code
    print(f"gym-conformance run: error: pytest could not run the suite (pytest exit code {code})", file=sys.stderr)
    return 2


def _empty_ini(root: str) -> str:
    path = f"{root}/pytest.ini"
    with open(path, "w") as fh:
        fh.write("[pytest]\n")
    return path
