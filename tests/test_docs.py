"""The docs/ pages hold what the code cites: every citation in the repository resolves to an anchor there, and
the catalogue table of docs/contract.md §15 is ``conformance.core.CATALOGUE`` word for word.

A citation is any of (see docs/README.md, "Reading a citation"):

- a section, ``§7.4`` / ``contract 7.4``: the contract unless the nearest page named before it on the same line
  (``drift-cases``, ``cpu-environment``, ``design-anchors``, ``gym-versions``) says otherwise;
- a check id ``E10``, ``M28``, ``R8``, ``T1``, ``B3`` (contract.md), a drift case ``D10``, numerical report
  ``N01``, invariant ``I1`` or probe ``P20`` (drift-cases.md); ``P50``/``P90``/``P95``/``P99`` on a line about
  latency or percentiles are percentiles, not probes;
- a trap, ``trap 2`` (cpu-environment.md);
- a page, ``docs/contract.md#s7.4``, or a bare ``drift-cases.md``.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

from conformance._process import run_command
from conformance.core import CATALOGUE

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# What the repository scan reads: tracked text files, minus the docs themselves, frozen dependency lists,
# run outputs, and this file (its scanner tests hold deliberately bad citations).
TEXT_SUFFIXES = {".py", ".md", ".json", ".jinja", ".sh", ".toml", ".txt", ".yaml", ".yml", ".cfg", ".ini", ".html"}
TEXT_NAMES = {"Makefile", "run"}
EXCLUDED_PREFIXES = ("docs/", "requirements/", "outputs/")
SELF = Path(__file__).resolve().relative_to(ROOT).as_posix()

PAGE_OF_KEYWORD = {
    "nemo-gym-contract": "contract.md", "contract": "contract.md", "drift-cases": "drift-cases.md",
    "cpu-environment": "cpu-environment.md", "design-anchors": "design-anchors.md", "gym-versions": "gym-versions.md",
}
_PAGE_KEYWORD = re.compile(r"nemo-gym-contract|contract|drift-cases|cpu-environment|design-anchors|gym-versions",
                           re.IGNORECASE)
_SECTION = re.compile(r"§\s?(\d+(?:\.\d+)*)")
_CONTRACT_SECTION = re.compile(r"\bcontract\s+(\d+(?:\.\d+)+)\b", re.IGNORECASE)
_TRAP = re.compile(r"\btraps?\s+(\d+)\b")
_CHECK_ID = re.compile(r"\b([EMRBT]\d{1,2})\b")
_DRIFT_ID = re.compile(r"\b(D\d{2}|N\d{2}|I\d)\b")
_PROBE_ID = re.compile(r"\bP(\d{2})\b")
_DOCS_LINK = re.compile(r"\bdocs/([\w.-]+\.md)(?:#([\w.-]+))?")
_BARE_PAGE = re.compile(r"(?<!docs/)\b(nemo-gym-contract|contract|drift-cases|cpu-environment|design-anchors|"
                        r"gym-versions)\.md\b(?:#([\w.-]+))?")
_PERCENTILES = {"50", "75", "90", "95", "99"}
_PERCENTILE_CONTEXT = re.compile(r"latenc|percentile|quantile|\bms\b|\btail\b", re.IGNORECASE)


@dataclass(frozen=True)
class Citation:
    where: str  # path:line
    text: str  # as written
    page: str  # a file name under docs/
    anchor: str | None  # None: the page itself

    def __str__(self) -> str:
        target = self.page + (f"#{self.anchor}" if self.anchor else "")
        return f"{self.where}: {self.text!r} -> docs/{target}"


def _page_for_section(line: str, start: int) -> str:
    """The page a ``§`` at ``start`` cites: the nearest page named before it, unless a ')' closed that mention."""
    named = list(_PAGE_KEYWORD.finditer(line, 0, start))
    if not named or ")" in line[named[-1].end():start]:
        return "contract.md"
    return PAGE_OF_KEYWORD[named[-1].group(0).lower()]


def scan(text: str, origin: str = "<text>") -> list[Citation]:
    """Every citation in ``text`` (rules in the module docstring), each with the docs page and anchor it needs."""
    found: list[Citation] = []
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{origin}:{number}"

        def add(m: re.Match, page: str, anchor: str | None) -> None:
            found.append(Citation(where, m.group(0), page, anchor))

        for m in _SECTION.finditer(line):
            add(m, _page_for_section(line, m.start()), "s" + m.group(1))
        for m in _CONTRACT_SECTION.finditer(line):
            add(m, "contract.md", "s" + m.group(1))
        for m in _TRAP.finditer(line):
            add(m, "cpu-environment.md", "trap-" + m.group(1))
        for m in _CHECK_ID.finditer(line):
            add(m, "contract.md", m.group(1))
        for m in _DRIFT_ID.finditer(line):
            add(m, "drift-cases.md", m.group(1))
        for m in _PROBE_ID.finditer(line):
            if not (m.group(1) in _PERCENTILES and _PERCENTILE_CONTEXT.search(line)):
                add(m, "drift-cases.md", m.group(0))
        for m in _DOCS_LINK.finditer(line):
            add(m, m.group(1), m.group(2))
        for m in _BARE_PAGE.finditer(line):
            add(m, PAGE_OF_KEYWORD[m.group(1)], m.group(2))
    return found


def _slug(heading: str) -> str:
    """GitHub's anchor for a markdown heading."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text))


@lru_cache(maxsize=None)
def anchors(page: str) -> frozenset[str]:
    """Anchors of a docs page: explicit ``id="..."`` attributes and GitHub heading slugs."""
    text = (DOCS / page).read_text(encoding="utf-8")
    ids = set(re.findall(r'\bid="([^"]+)"', text))
    ids |= {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, re.MULTILINE)}
    return frozenset(ids)


def unresolved(citations: list[Citation]) -> list[Citation]:
    return [c for c in citations
            if not (DOCS / c.page).is_file() or (c.anchor is not None and c.anchor not in anchors(c.page))]


def repository_citations() -> list[Citation]:
    listed = run_command(["git", "-C", str(ROOT), "ls-files", "-z"], capture=True, timeout=60)
    assert listed.returncode == 0, f"git ls-files failed: {listed.stderr}"
    citations = []
    for rel in sorted(filter(None, listed.stdout.split("\0"))):
        path = ROOT / rel
        if (rel.startswith(EXCLUDED_PREFIXES) or rel == SELF or not path.is_file()
                or (path.suffix not in TEXT_SUFFIXES and path.name not in TEXT_NAMES)):
            continue
        citations += scan(path.read_text(encoding="utf-8", errors="replace"), rel)
    return citations


# -- the catalogue table ---------------------------------------------------------------------------------------

def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


def _table_after(text: str, marker: str) -> list[list[str]]:
    """Body rows of the first markdown table after ``marker`` (before the next heading)."""
    rows: list[str] = []
    for line in text[text.index(marker):].splitlines()[1:]:
        if line.startswith("|"):
            rows.append(line)
        elif rows or line.startswith("#"):
            break
    return [_cells(row) for row in rows[2:]]


def _anchored_id(cell: str) -> str:
    m = re.fullmatch(r'<a id="([^"]+)"></a>(\S+)', cell)
    assert m and m.group(1) == m.group(2), f"id cell {cell!r} should be <a id=\"X\"></a>X"
    return m.group(1)


def _plain(cell: str) -> str:
    return html.unescape(cell.replace("\\|", "|"))


def doc_catalogue() -> dict[str, dict]:
    text = (DOCS / "contract.md").read_text(encoding="utf-8")
    rows = {}
    for id_cell, name, tier, kind, requirement, probes in _table_after(text, '<a id="catalogue"></a>'):
        check_id = _anchored_id(id_cell)
        assert check_id not in rows, f"{check_id} listed twice in docs/contract.md §15"
        rows[check_id] = {"name": name.strip("`"), "tier": tier, "kind": kind, "requirement": _plain(requirement),
                          "probes": set(re.findall(r"\[(P\d{2})\]\(drift-cases\.md#P\d{2}\)", probes))}
    return rows


def probe_checks() -> dict[str, set[str]]:
    """Probe id -> the check ids in its "Check" column (docs/drift-cases.md §4)."""
    text = (DOCS / "drift-cases.md").read_text(encoding="utf-8")
    return {_anchored_id(row[0]): set(re.findall(r"\[([EMRTB]\d+)\]", row[-1]))
            for row in _table_after(text, '## <a id="s4"></a>')}


def test_catalogue_table_is_the_code_catalogue():
    doc = doc_catalogue()
    assert sorted(doc) == sorted(CATALOGUE), "docs/contract.md §15 and conformance/core/_catalogue.py list different ids"
    for check_id, spec in CATALOGUE.items():
        row = doc[check_id]
        assert (row["name"], row["tier"], row["kind"]) == (spec.name, spec.tier, spec.kind), check_id
        assert row["requirement"] == spec.requirement, f"{check_id}: requirement sentence differs"


def test_catalogue_probes_agree_with_the_probe_table():
    doc, by_probe = doc_catalogue(), probe_checks()
    assert sorted(by_probe) == [f"P{n:02d}" for n in range(1, 32)]
    for check_id, row in doc.items():
        assert row["probes"] == {p for p, checks in by_probe.items() if check_id in checks}, check_id
        if CATALOGUE[check_id].probes:
            assert row["probes"] == set(CATALOGUE[check_id].probes), check_id
    assert set().union(*by_probe.values()) <= set(doc), "a probe names a check the harness catalogue lacks"


def test_checks_outside_the_harness_are_not_in_the_catalogue():
    text = (DOCS / "contract.md").read_text(encoding="utf-8")
    outside = [_anchored_id(row[0]) for row in _table_after(text, '<a id="not-in-harness"></a>')]
    assert outside and not set(outside) & set(CATALOGUE)


# -- citations ---------------------------------------------------------------------------------------------------

def test_every_citation_in_the_repository_resolves():
    citations = repository_citations()
    assert len(citations) > 500, "the scanner found suspiciously few citations"
    bad = unresolved(citations)
    assert not bad, "citations that lead nowhere in docs/:\n" + "\n".join(map(str, bad))


def test_scanner_catches_made_up_citations():
    text = "\n".join([
        "see contract §99.9 for the rule",
        "probe P99 and drift case D99 (contract 42.1)",
        "the check M99 and cpu-environment trap 12",
        "details in docs/nowhere.md and docs/contract.md#s99",
        "explained in cpu-environment.md §2.9",
    ])
    bad = {c.text for c in unresolved(scan(text))}
    assert bad == {"§99.9", "P99", "D99", "contract 42.1", "M99", "trap 12", "docs/nowhere.md",
                   "docs/contract.md#s99", "§2.9"}


def test_scanner_resolves_good_citations():
    text = ("contract §7.4, §7.9 row 5 (P20, D10, M28, R8, I1); drift-cases §3; cpu-environment traps 3 and §3.1;\n"
            "docs/contract.md#M28 and docs/drift-cases.md#P01; see cpu-environment.md §2.3 and trap 2")
    citations = scan(text)
    assert len(citations) == 17 and not unresolved(citations)


def test_scanner_attributes_sections_to_the_page_named_before_them():
    text = "(cpu-environment.md §4) then §7.4; drift-cases §1 and §2"
    pages = {c.text: c.page for c in scan(text) if c.text.startswith("§")}
    assert pages == {"§4": "cpu-environment.md", "§7.4": "contract.md", "§1": "drift-cases.md", "§2": "drift-cases.md"}


def test_scanner_reads_percentiles_as_percentiles():
    assert scan("latency P50 12 ms, P99 30 ms") == []
    assert [c.text for c in scan("probes P01/P02 and P99")] == ["P01", "P02", "P99"]
    assert scan("the prefix is P_k + G_k, and P2 + G2") == []


def test_links_between_docs_pages_resolve():
    bad = []
    for page in sorted(DOCS.glob("*.md")):
        for m in re.finditer(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            target = m.group(1)
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            file = file or page.name
            if not (DOCS / file).is_file() or (anchor and anchor not in anchors(file)):
                bad.append(f"{page.name}: {target}")
    assert not bad


def test_docs_index_lists_every_page():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    pages = {p.name for p in DOCS.glob("*.md")} - {"README.md"}
    assert pages and all(f"]({name})" in index for name in pages)


def test_readme_points_at_the_docs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/contract.md" in readme and "docs/README.md" in readme


@pytest.mark.parametrize("page", ["contract.md", "drift-cases.md", "cpu-environment.md"])
def test_numbered_sections_have_stable_anchors(page):
    text = (DOCS / page).read_text(encoding="utf-8")
    numbered = re.findall(r"^#{2,3} <a id=\"s([\d.]+)\"></a>([\d.]+)", text, re.MULTILINE)
    assert numbered and all(anchor == number.rstrip(".") for anchor, number in numbered)
    assert len(re.findall(r"^#{2,3} \d", text, re.MULTILINE)) == 0, "a numbered heading without an anchor"
