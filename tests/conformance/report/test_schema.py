"""The published JSON Schemas: generated from the validating models, committed, and checked against each other."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import dumps
from conformance.plugin.schema_cli import SCHEMAS, schema_text
from conformance.report import _documents

SCHEMA_DIR = Path(_documents.__file__).parent / "schemas"
DUMPS_DIR = Path(dumps.__file__).parent / "schemas"
COMMITTED = {"report": SCHEMA_DIR / "report-1.schema.json", "matrix": SCHEMA_DIR / "matrix-1.schema.json",
             "rollouts": DUMPS_DIR / "rollouts-1.schema.json", "batches": DUMPS_DIR / "train-batches-1.schema.json",
             "metrics": DUMPS_DIR / "metrics-1.schema.json"}


@pytest.mark.parametrize("document", sorted(SCHEMAS))
def test_committed_schema_is_what_the_model_publishes(document):
    """A schema change must be deliberate: regenerate with ``gym-conformance schema DOC --out FILE`` and bump the
    document's version if old documents no longer validate."""
    assert COMMITTED[document].read_text() == schema_text(document)


def test_schema_names_the_version_and_forbids_unknown_fields():
    schema = json.loads(COMMITTED["report"].read_text())
    assert schema["properties"]["schema"]["const"] == "gym-conformance/report/1"
    assert schema["additionalProperties"] is False and "results" in schema["required"]


def test_a_sample_report_validates_against_the_committed_schema(report_dict):
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(report_dict, json.loads(COMMITTED["report"].read_text()))


def test_another_schema_version_says_which_version_it_needs(report_dict):
    from conformance.report import Report, ReportError

    report_dict["schema"] = "gym-conformance/report/2"
    with pytest.raises(ReportError, match=r"version 2 .* reads 'gym-conformance/report/1'"):
        Report.from_dict(report_dict)


def test_cli_prints_and_writes_the_schema(tmp_path, capsys):
    import argparse

    from conformance.plugin import schema_cli

    parser = argparse.ArgumentParser()
    schema_cli.add_arguments(parser)
    assert schema_cli.run(parser.parse_args(["report"])) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "gym-conformance report"
    assert schema_cli.run(parser.parse_args(["matrix", "--out", str(tmp_path / "m.json")])) == 0
    assert (tmp_path / "m.json").read_text() == schema_text("matrix")
    assert schema_cli.run(parser.parse_args(["matrix", "--out", str(tmp_path / "no" / "dir.json")])) == 2


def test_documents_written_before_variants_were_recorded_still_load(report_dict):
    from conformance.report import Report

    for result in report_dict["results"]:
        result.pop("variant", None)
    assert all(r.variant is None for r in Report.from_dict(report_dict).results)
