"""Every endpoint and multi-turn check passes on a correct (splicing) fake endpoint and fails on a fake with
the one defect it targets; the verdict names the defect."""
import pytest

from conformance.checks import CHECKS, run_check
from conformance.core import CheckFailure


def _all_variants():
    # template-level checks have their own tests (test_template.py); R8 needs a model to rescore against, so it
    # is proven on real servers (test_refit.py)
    return [(cid, name) for cid, variants in CHECKS.items() for name, _ in variants
            if not cid.startswith(("T", "R")) and cid not in ("M17", "M18") and name != "drift-search"]


@pytest.mark.parametrize("check_id, variant", _all_variants())
def test_passes_on_a_correct_endpoint(fake_ctx, check_id, variant):
    run_check(fake_ctx(), check_id, variant)


DEFECTS = [  # check, variant, fake options, words the verdict must contain
    ("E1", None, dict(defects={"models-404"}), "HTTP 404"),
    ("M28", None, dict(defects={"false-refusal"}), "false refusal"),
    ("E1", None, dict(defects={"models-id-unusable"}), "not usable as model"),
    ("E26", None, dict(defects={"logprobs-shifted"}, reply="a longer reply to score"), "one position late"),
    ("E2", None, dict(defects={"reject-token-fields"}), "HTTP 400"),
    ("E3", None, dict(defects={"partial-bundle"}), "missing: generation_log_probs"),
    ("E4", None, dict(defects={"length-mismatch"}), "mismatched generation token IDs"),
    ("E5", None, dict(defects={"source-disagree"}), "disagrees"),
    ("E6", None, dict(defects={"usage-wrong"}), "usage"),
    ("E7", None, dict(defects={"no-eos"}), "is not EOS"),
    ("E8", None, dict(defects={"bos"}), "differs from the reference render"),
    ("E9", None, dict(defects={"tokenize-shape"}), "/tokenize answered"),
    ("E10", None, dict(defects={"overflow-500"}), "HTTP 500"),
    ("E11", None, dict(defects={"reject-n"}), "n=1"),
    ("E13", None, dict(defects={"generation-config-fallback"}), "truncated and renormalised"),
    ("E14", None, dict(defects={"tool-shape"}), "bad id"),
    ("E15", None, dict(defects={"bad-finish"}), "finish_reason 'done'"),
    ("E16", None, dict(defects={"top-logprobs-null-empty"}), "silently empty"),
    ("E17", None, dict(defects={"bos"}), "/tokenize"),
    ("E18", None, dict(defects={"max-tokens-rejected"}), "instead of clamping"),
    ("E19", None, dict(defects={"no-token-id-strings"}), "token_id:N"),
    ("E20", None, dict(defects={"raw-logprobs"}), "raw logprobs"),
    ("M24", None, dict(defects={"rescore-mismatch"}), "token_mult_prob_error"),
    ("M1", "sampled-rollout", dict(mode="retokenize", ref="strip", reply="<think>\nhmm\n</think>\n\nok"),
     "template stripping"),
    ("M1", "truncated-and-tool", dict(mode="retokenize", ref="resorted"), "re-templated"),
    ("M2", None, dict(defects={"double-eos"}), "splice"),
    ("M3", None, dict(mode="retokenize"), "re-tokenized the previous generation"),
    ("M4", None, dict(mode="retokenize"), "re-templated the previous generation"),
    ("M5", "across-user", dict(mode="retokenize", ref="strip"), "template stripping"),
    ("M5", "across-tools", dict(mode="retokenize", ref="resorted"), "re-templated"),
    ("M11", None, dict(defects={"double-eos"}), "exactly one EOS"),
    ("M12", None, dict(defects={"drop-separator"}), "separator missing or doubled"),
    ("M6", None, dict(defects={"first-carrier"}), "first carrier"),
    ("M16", None, dict(defects={"splice-edited-history"}), "environment's edit is gone"),
    ("M13", None, dict(defects={"tokenize-unspliced"}), "/tokenize"),
    ("M14", None, dict(defects={"boundary-last-assistant"}), "dropped messages"),
    ("M15", None, dict(defects={"empty-prefix-garbage"}), "neither an error nor the template fallback"),
    ("M15", None, dict(defects={"empty-prefix-wins"}), "displaced the earlier carried prefix"),
    ("E23", None, dict(defects={"error-detail"}), "no error object"),
    ("E24", None, dict(defects={"system-as-user"}), "differs from the reference render"),
    ("E25", None, dict(defects={"reject-model-only-ids"}), "refused a carried generation holding id 1000"),
    # a multi-turn check that needs the bundle fails with Gym's own error text, not a harness traceback
    ("M3", None, dict(defects={"partial-bundle"}), "missing: generation_log_probs"),
    ("M19", None, dict(defects={"double-eos"}), "splice"),
    ("M20", None, dict(mode="retokenize", defects={"ignore-reasoning-field"}), "reasoning sent as reasoning"),
    ("M23", None, dict(mode="retokenize", ref="qwen3", kwargs={"enable_thinking": False}), "template stripping"),
]


@pytest.mark.parametrize("check_id, variant, options, words", DEFECTS, ids=[f"{d[0]}-{d[1] or ''}" for d in DEFECTS])
def test_fails_on_the_defect_it_targets(fake_ctx, check_id, variant, options, words, request):
    options = dict(options)
    ref = options.pop("ref", None)
    if ref is not None:
        from conformance.checks import Reference
        from fixtures import fixture_path
        name = {"strip": "tiny-chatml-drift-strip-reasoning", "resorted": "tiny-chatml-drift-tool-json-resorted",
                "qwen3": "tiny-qwen3"}[ref]
        options["ref"] = Reference(str(fixture_path(name)))
    ctx = fake_ctx(**options)
    with pytest.raises(CheckFailure) as info:
        run_check(ctx, check_id, variant)
    failure = info.value
    assert failure.check_id == check_id
    assert words in failure.verdict, failure.verdict
    assert failure.evidence.verdict == failure.verdict and failure.evidence.endpoint


def test_continuity_failure_carries_token_diff_and_reproduction(fake_ctx):
    with pytest.raises(CheckFailure) as info:
        run_check(fake_ctx(mode="retokenize"), "M3")
    ev = info.value.evidence
    assert ev.token_diff is not None and ev.token_diff.first_diff is not None
    assert ev.token_diff.expected[ev.token_diff.first_diff] != ev.token_diff.actual[ev.token_diff.first_diff]
    assert ev.curl.startswith("curl -sS -X POST http://fake/v1/chat/completions")
    assert ev.request["messages"][1]["generation_token_ids"]


@pytest.mark.parametrize("check_id", ["M14", "M15"])
def test_loud_refusal_is_allowed(fake_ctx, check_id):
    """P18/P19: refusing an assistant without (or with empty) ids with HTTP 400 is one of the allowed answers."""
    run_check(fake_ctx(defects={"no-token-fields"}), check_id)
