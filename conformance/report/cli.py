"""``gym-conformance report REPORT.json [--html OUT] [--junit OUT] [--markdown OUT]``, and
``gym-conformance report compare RUN_DIR... [--out FILE]`` (runs side by side, see ``compare.py``).

Re-renders the artefacts from ``report.json`` (the source of truth) without pytest, e.g. after a CI
run or with a newer version of the templates. With no output option it writes the HTML next to the
JSON (``reports/report.json`` → ``reports/report.html``). Everything is rendered in memory before the
first file is written, and each file is written atomically, so bad input leaves nothing half-written.
Exit codes: 0 rendered, 2 unreadable or invalid input or unusable output path.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._io import write_atomic
from ._documents import ReportError
from .artifacts import render_artifacts
from .model import load

PROG = "gym-conformance report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("report", nargs="+", metavar="REPORT.json | compare RUN_DIR ...",
                        help="a report.json written by the pytest plugin; or `compare` and run folders (each holding "
                             "a report.json) to render side by side")
    parser.add_argument("--out", metavar="FILE", default="compare.html",
                        help="compare: where the comparison page goes (default: compare.html)")
    parser.add_argument("--html", metavar="OUT", help="write the self-contained HTML report here")
    parser.add_argument("--junit", metavar="OUT", help="write JUnit XML here (one testcase per check result)")
    parser.add_argument("--markdown", metavar="OUT", help="write a Markdown summary here (CI job summaries)")


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def _read(source: Path):
    """(report, None) or (None, the one-line error) for a report.json the user named."""
    try:
        return load(source), None
    except ReportError as exc:
        return None, f"invalid report: {exc}"
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return None, f"cannot read {source}: {reason}"


def run(args: argparse.Namespace) -> int:
    if args.report[0] == "compare":
        return _compare(args.report[1:], Path(args.out))
    if len(args.report) != 1:
        return _fail(f"one REPORT.json at a time (got {len(args.report)}); to put runs side by side use "
                     "`gym-conformance report compare RUN_DIR...`")
    source = Path(args.report[0])
    report, problem = _read(source)
    if problem:
        return _fail(problem)

    wanted = {"html": args.html, "junit": args.junit, "markdown": args.markdown}
    if not any(wanted.values()):
        wanted["html"] = str(source.with_suffix(".html"))
    targets = {kind: Path(out) for kind, out in wanted.items() if out}
    seen: dict[Path, str] = {}
    for kind, path in targets.items():
        resolved = path.resolve()
        if resolved == source.resolve():  # the JSON is the source of truth: never render over it
            return _fail(f"--{kind} {path} would overwrite the input report")
        if resolved in seen:
            return _fail(f"--{kind} and --{seen[resolved]} both write {path}")
        if not path.parent.is_dir():
            return _fail(f"--{kind} {path}: folder {path.parent} does not exist")
        seen[resolved] = kind

    rendered = render_artifacts(report, targets)  # everything in memory before the first write
    for kind, text in rendered.items():
        try:
            write_atomic(targets[kind], text)
        except OSError as exc:
            return _fail(f"cannot write {targets[kind]}: {exc.strerror or exc}")
        print(f"{kind}: {targets[kind]}")
    counts = ", ".join(f"{n} {outcome}" for outcome, n in report.summary.counts.items() if n)
    print(f"verdict: {report.summary.verdict} ({counts or 'no results'})")
    return 0


def _compare(folders: list[str], out: Path) -> int:
    from .compare import Run, relative_href, render_compare_html

    if not folders:
        return _fail("compare needs at least one run folder (each holding a report.json)")
    if not out.parent.is_dir():
        return _fail(f"--out {out}: folder {out.parent} does not exist")
    runs = []
    for folder in map(Path, folders):
        source = folder / "report.json" if folder.is_dir() else folder
        report, problem = _read(source)
        if problem:
            return _fail(problem)
        html = source.with_suffix(".html")
        name = (folder if folder.is_dir() else folder.parent).name or str(folder)
        runs.append(Run(name, report, relative_href(html, out) if html.is_file() else None))
    try:
        page = render_compare_html(runs)
    except ValueError as exc:
        return _fail(str(exc))
    try:
        write_atomic(out, page)
    except OSError as exc:
        return _fail(f"cannot write {out}: {exc.strerror or exc}")
    print(f"comparison: {out} ({len(runs)} runs)")
    return 0
