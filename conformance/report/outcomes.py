"""The one outcome vocabulary: every outcome's label, glyph, description and severity, the verdict rule, and
the check families. Renderers, the matrix, the plugin's grading and the summary all read it from here."""
from __future__ import annotations

import re
from enum import Enum
from typing import Iterable


class Outcome(str, Enum):
    """A graded check run (autobahn's legend, "Missing" named for what it means here). Declaration order is
    the summary/legend order; ``severity`` ranks outcomes when one cell stands for several runs."""

    PASS = "pass"
    FAIL = "fail"
    NON_STRICT = "non_strict"
    INFO = "info"
    SKIPPED = "skipped"
    ERROR = "error"

    @property
    def label(self) -> str:
        return _META[self][0]

    @property
    def glyph(self) -> str:
        return _META[self][1]

    @property
    def description(self) -> str:
        return _META[self][2]

    @property
    def severity(self) -> int:
        """0 is the worst: fail, error, non-strict, info, pass, skipped."""
        return _SEVERITY.index(self)


_META = {
    Outcome.PASS: ("Pass", "✓", "the endpoint meets the requirement"),
    Outcome.FAIL: ("Fail", "✗", "violates a MUST (or a SHOULD under --conformance-strict): not conformant"),
    Outcome.NON_STRICT: ("Non-Strict", "~", "violates a SHOULD: still conformant, worth fixing"),
    Outcome.INFO: ("Info", "i", "behaviour the contract leaves open, reported for information"),
    Outcome.SKIPPED: ("Skipped", "–", "not applicable here: feature not served or --tokenizer not given"),
    Outcome.ERROR: ("Error", "!", "the check could not run: endpoint or harness error"),
}
_SEVERITY = (Outcome.FAIL, Outcome.ERROR, Outcome.NON_STRICT, Outcome.INFO, Outcome.PASS, Outcome.SKIPPED)

OUTCOMES = tuple(o.value for o in Outcome)
VERDICTS = ("pass", "fail", "error")
LEGEND_LINE = " · ".join(f"{o.glyph} {o.label.lower()}" for o in Outcome) + " · blank: not run"


def verdict_of(outcomes: Iterable[str]) -> str:
    """The run verdict: fail iff any fail; error iff any error and no fail; else pass."""
    seen = set(outcomes)
    return "fail" if "fail" in seen else "error" if "error" in seen else "pass"


def worst_outcome(outcomes: Iterable[str]) -> str | None:
    """The most severe of several outcomes (one matrix cell for a check with variants); None if none."""
    ranked = sorted((Outcome(o) for o in outcomes), key=lambda o: o.severity)
    return ranked[0].value if ranked else None


FAMILIES: dict[str, str] = {
    "E": "Endpoint, single call", "M": "Multi-turn and on-policy correction", "R": "Rollout and loop",
    "T": "Template", "template": "Template", "B": "Benchmarks",
}


def family_of(check_id: str, name: str = "") -> str:
    """``E4`` → ``E``; ids without a number fall back to the name's first segment (``template/...``)."""
    match = re.fullmatch(r"([A-Za-z]+)\d+[a-z]?", check_id)
    if match:
        return match.group(1).upper()
    return name.split("/", 1)[0] if "/" in name else "other"
