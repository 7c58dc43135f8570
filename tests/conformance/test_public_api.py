"""Pins the public names other components rely on (httpx-style ``__all__`` test)."""
import conformance.checks
import conformance.client
import conformance.core


def test_core_api():
    assert sorted(conformance.core.__all__) == sorted([
        "CATALOGUE", "INFO", "MUST", "SHOULD", "CheckSpec", "spec", "CheckFailure", "CheckInfo", "CheckSkipped",
        "ClientFinding", "ContextOverflow", "EndpointError", "EndpointStopped", "Evidence", "TokenDiff", "log_softmax", "logprob_metrics", "SpliceError", "splice",
        "describe_divergence", "first_difference", "prefix_difference", "token_diff",
        "REDACTED", "redact", "redact_text", "secrets_of",
        "Timed", "endpoint_figures", "max_in_flight", "percentile", "served_by", "went_back"])


def test_client_api():
    assert sorted(conformance.client.__all__) == sorted([
        "REQUIRED", "Bundle", "Sources", "TokenMetadataError", "choose", "invalid_logprobs", "read_sources",
        "ChatCall", "GymClient", "Stats", "curl_for", "split_base", "tokenize_body", "training_body",
        "DEFAULT_GYM_VERSION", "GYM_PROFILES", "GymProfile", "SessionRouter", "endpoint_for_session", "gym_profile",
        "parse_generation", "to_messages", "to_output_items", "Rollout", "Runner", "Step"])


def test_checks_api():
    assert sorted(conformance.checks.__all__) == sorted(["CHECKS", "LOAD_CHECKS", "LoadPlan", "run_load", "CheckContext", "Context", "Reference", "Split",
                                                         "Target", "arun_check", "check", "run_check"])
