"""The JSON documents this package reads and writes, as pydantic models: validation and the published JSON Schema.

``report.json`` (``gym-conformance/report/1``) and the selftest matrix (``gym-conformance/matrix/1``). The
plugin and the renderers meet only through these documents, so a producer bug surfaces as
``results[3].evidence.token_diff.first_diff: ...`` (a :class:`ReportError` naming the field), never as a
``KeyError`` deep in a template. The committed schemas in ``schemas/`` must equal what the models publish
(``tests/conformance/report/test_schema.py``), so a schema change is always deliberate.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .outcomes import Outcome, verdict_of

REPORT_SCHEMA = "gym-conformance/report/1"
MATRIX_SCHEMA = "gym-conformance/matrix/1"
Tier = Literal["MUST", "SHOULD", "INFO"]
Finite = Annotated[float, Field(allow_inf_nan=False)]
OutcomeField = Annotated[Outcome, Field(strict=False)]  # JSON carries the enum's value
Free = Any  # request/response bodies, metrics values: whatever the endpoint sent (non-JSON text included)


class ReportError(ValueError):
    """A document does not follow its schema; ``field`` is the path of the offending value."""

    def __init__(self, field: str, problem: str, source: str | None = None) -> None:
        super().__init__(field, problem)
        self.field, self.problem, self.source = field, problem, source  # source: the file, once known

    def __str__(self) -> str:
        return ": ".join(part for part in (self.source, self.field, self.problem) if part)


class _Doc(BaseModel):
    # strict: a bool is not a number and "3" is not an int; forbid: an unknown key is a typo
    model_config = ConfigDict(extra="forbid", strict=True)


class TokenDiffDoc(_Doc):
    expected: list[int]
    actual: list[int]
    first_diff: int | None
    expected_label: str
    actual_label: str
    expected_context: str
    actual_context: str

    @model_validator(mode="after")
    def _first_diff_inside(self) -> "TokenDiffDoc":
        if self.first_diff is not None and not 0 <= self.first_diff <= max(len(self.expected), len(self.actual)):
            raise _FieldError("first_diff", f"{self.first_diff} is outside both sequences (lengths "
                                            f"{len(self.expected)} and {len(self.actual)})", relative=True)
        return self


class HypothesisDoc(_Doc):
    seed: int | None
    example: Free


class EvidenceDoc(_Doc):
    verdict: str
    endpoint: str
    request: Free
    response: Free
    curl: str | None
    token_diff: TokenDiffDoc | None
    metrics: dict[str, Free] | None
    hypothesis: HypothesisDoc | None
    notes: list[str]


class ResultDoc(_Doc):
    check_id: Annotated[str, Field(min_length=1)]
    name: str
    tier: Tier
    requirement: str
    outcome: OutcomeField
    nodeid: str
    duration_s: Finite
    message: str | None
    evidence: EvidenceDoc | None
    variant: str | None = None  # absent in documents written before variants were recorded


class ToolDoc(_Doc):
    name: str
    version: str


class TargetDoc(_Doc):
    endpoints: list[str]
    model: str | None
    tokenizer: str | None
    strict: bool
    dumps: dict[str, str] = Field(default_factory=dict)  # loop checks: "rollouts" / "batches" -> the file read


class EnvironmentDoc(_Doc):
    python: str
    platform: str
    cpu_flags: list[str]
    hypothesis_profile: str | None


class CountsDoc(_Doc):
    pass_: Annotated[int, Field(ge=0, alias="pass")]
    fail: Annotated[int, Field(ge=0)]
    non_strict: Annotated[int, Field(ge=0)]
    info: Annotated[int, Field(ge=0)]
    skipped: Annotated[int, Field(ge=0)]
    error: Annotated[int, Field(ge=0)]


class SummaryDoc(_Doc):
    verdict: Literal["pass", "fail", "error"]
    counts: CountsDoc


class ReportDoc(_Doc):
    """``report.json``: one conformance run against one target (several endpoints for data-parallel ranks)."""

    model_config = ConfigDict(extra="forbid", strict=True, title="gym-conformance report")
    schema_: Literal["gym-conformance/report/1"] = Field(alias="schema")
    tool: ToolDoc
    started_at: str
    finished_at: str
    duration_s: Finite
    target: TargetDoc
    environment: EnvironmentDoc
    summary: SummaryDoc
    results: list[ResultDoc]

    @field_validator("started_at", "finished_at")
    @classmethod
    def _iso(cls, text: str) -> str:
        try:
            datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"expected an ISO 8601 timestamp, got {text!r}") from None
        return text

    @model_validator(mode="after")
    def _summary_agrees(self) -> "ReportDoc":
        # A summary that disagrees with its results would make the HTML badge and CI gate lie: refuse it.
        for outcome in Outcome:
            stored = getattr(self.summary.counts, "pass_" if outcome is Outcome.PASS else outcome.value)
            actual = sum(r.outcome is outcome for r in self.results)
            if stored != actual:
                raise _FieldError(f"summary.counts.{outcome.value}", f"says {stored} but results have {actual}")
        verdict = verdict_of(r.outcome.value for r in self.results)
        if self.summary.verdict != verdict:
            raise _FieldError("summary.verdict", f"says {self.summary.verdict!r} but results give {verdict!r}")
        return self


class CheckMetaDoc(_Doc):
    name: str
    tier: Tier


class MatrixDoc(_Doc):
    """The mutant x check matrix of ``gym-conformance selftest`` (``matrix.json``)."""

    model_config = ConfigDict(extra="forbid", strict=True, title="gym-conformance selftest matrix")
    schema_: Literal["gym-conformance/matrix/1"] = Field(alias="schema")
    rows: list[str]
    columns: list[str]
    checks: dict[str, CheckMetaDoc]
    cells: dict[str, dict[str, OutcomeField]]

    @model_validator(mode="after")
    def _cells_are_listed(self) -> "MatrixDoc":
        for row, row_cells in self.cells.items():
            if row not in self.rows:
                raise _FieldError(f"cells.{row}", "row is not listed in rows")
            for check_id in row_cells:
                if check_id not in self.columns:
                    raise _FieldError(f"cells.{row}.{check_id}", "check id is not listed in columns")
        return self


class _FieldError(ValueError):
    """Raised by a cross-field validator to name the field it is about (pydantic would name the model);
    ``relative``: the field is inside the object being validated, wherever that sits in the document."""

    def __init__(self, field: str, problem: str, *, relative: bool = False) -> None:
        super().__init__(problem)
        self.field, self.problem, self.relative = field, problem, relative


D = TypeVar("D", bound=_Doc)
_VERSIONED = re.compile(r"gym-conformance/(report|matrix)/(\d+)$")


def validate(model: type[D], data: Any) -> D:
    """``data`` as ``model``, or a :class:`ReportError` naming the first offending field."""
    if not isinstance(data, dict):
        raise ReportError("", f"expected object, got {type(data).__name__}")
    want = model.model_fields["schema_"].annotation.__args__[0]
    found = data.get("schema")
    if found != want:
        match = _VERSIONED.match(found) if isinstance(found, str) else None
        if match and match.group(1) == want.split("/")[1]:
            raise ReportError("schema", f"this document is version {match.group(2)} ({found!r}); this "
                                        f"gym-conformance reads {want!r}: render it with the gym-conformance "
                                        "version that wrote it")
        raise ReportError("schema", f"expected {want!r}, got {found!r}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _report_error(exc) from None


def _report_error(exc: ValidationError) -> ReportError:
    first = exc.errors(include_url=False)[0]
    cause = (first.get("ctx") or {}).get("error")
    field = _path(first["loc"])
    if isinstance(cause, _FieldError):
        return ReportError(f"{field}.{cause.field}" if cause.relative and field else cause.field, cause.problem)
    kind, msg = first["type"], first["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        msg = "unknown field"
    elif kind == "missing":
        msg = "missing"
    elif "input" in first and kind not in ("value_error", "assertion_error"):
        shown = repr(first["input"])
        msg = f"{msg}, got {type(first['input']).__name__} {shown if len(shown) <= 40 else shown[:37] + '...'}"
    return ReportError(field, msg)


def _path(loc: tuple[Any, ...]) -> str:
    """``("results", 3, "evidence", "token_diff", "first_diff")`` -> ``results[3].evidence.token_diff.first_diff``
    (validator wrappers such as ``function-after[...]`` are pydantic's, not fields: they are dropped)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" not in str(part):
            out += ("." if out else "") + str(part)
    return out


def report_json_schema() -> dict[str, Any]:
    return ReportDoc.model_json_schema(by_alias=True)


def matrix_json_schema() -> dict[str, Any]:
    return MatrixDoc.model_json_schema(by_alias=True)
