"""``gym-conformance schema report|matrix|rollouts|batches|metrics [--out FILE]``: a published JSON Schema.

``report`` and ``matrix`` are documents this tool writes; ``rollouts``, ``batches`` and ``metrics`` are the
loop dumps a framework writes for the loop checks (the schema of one JSONL line). The schemas come from the
pydantic models that validate the documents; the committed copies in ``conformance/report/schemas/`` and
``conformance/dumps/schemas/`` must equal them (a test), so a schema change is always deliberate.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..dumps import line_json_schema
from ..report._io import write_atomic
from ..report._documents import matrix_json_schema, report_json_schema

SCHEMAS = {"report": report_json_schema, "matrix": matrix_json_schema,
           **{doc: (lambda doc=doc: line_json_schema(doc)) for doc in ("rollouts", "batches", "metrics")}}


def schema_text(document: str) -> str:
    return json.dumps(SCHEMAS[document](), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("document", choices=sorted(SCHEMAS), help="which document's JSON Schema to print")
    parser.add_argument("--out", metavar="FILE", help="write it to FILE instead of standard output")


def run(args: argparse.Namespace) -> int:
    text = schema_text(args.document)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        write_atomic(Path(args.out), text)
    except OSError as exc:
        print(f"gym-conformance schema: error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0
