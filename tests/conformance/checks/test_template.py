"""Template-level checks against the fixture templates: the base ChatML template passes, each drift variant
is caught by the check for its drift class."""
from pathlib import Path
import shutil

import pytest

from conformance.checks import Context, Reference, Target, run_check
from conformance.core import CheckFailure, CheckInfo
from fixtures import fixture_path

TEMPLATE_CHECKS = ["T1", "T2", "T3", "M17", "M18"]


def _ctx(runner, ref: Reference) -> Context:
    return Context(Target("http://unused/v1", tokenizer=ref.name), runner, reference=ref)


@pytest.mark.parametrize("check_id", TEMPLATE_CHECKS)
def test_base_chatml_template_passes(runner, chatml_ref, check_id):
    run_check(_ctx(runner, chatml_ref), check_id)


@pytest.mark.parametrize("variant, check_id, words", [
    ("tool-json-resorted", "T3", "re-rendered with different bytes"),
    ("no-separator", "T2", "inconsistent turn separator"),
    ("eos-not-end-of-turn", "M17", "does not close the assistant turn"),
])
def test_drift_variant_fails_its_check(runner, variant, check_id, words):
    ref = Reference(str(fixture_path(f"tiny-chatml-drift-{variant}")))
    with pytest.raises(CheckFailure, match=words):
        run_check(_ctx(runner, ref), check_id)


@pytest.mark.parametrize("variant, shape", [("strip-reasoning", "reasoning-then-user"),
                                            ("drop-empty-assistant", "empty-then-user"),
                                            ("tool-json-resorted", "tool-then-result")])
def test_prefix_preservation_reports_breaking_shapes(runner, variant, shape):
    ref = Reference(str(fixture_path(f"tiny-chatml-drift-{variant}")))
    with pytest.raises(CheckInfo) as info:
        run_check(_ctx(runner, ref), "T1")
    assert shape in info.value.verdict


def test_qwen3_template_is_reported_not_prefix_preserving(runner, qwen3_ref):
    with pytest.raises(CheckInfo, match="reasoning-then-user"):
        run_check(_ctx(runner, qwen3_ref), "T1")
    run_check(_ctx(runner, qwen3_ref), "M17")  # the empty think block does not hide the EOS


def test_string_arguments_iterated_per_character(runner, tmp_path):
    """D21: a template that runs string arguments through tojson double-encodes them."""
    src = fixture_path("tiny-chatml")
    for f in Path(src).iterdir():
        if f.name != "manifest.json":
            shutil.copy2(f, tmp_path / f.name)
    template = (tmp_path / "chat_template.jinja")
    text = template.read_text() if template.exists() else (Path(src) / "chat_template.jinja").read_text()
    template.write_text(text.replace("{%- set args = fn.arguments -%}", "{%- set args = fn.arguments | tojson -%}"))
    with pytest.raises(CheckFailure, match="double-encoded"):
        run_check(_ctx(runner, Reference(str(tmp_path))), "M18")
