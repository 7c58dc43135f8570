"""Pure core of the harness: failures, the check catalogue, token diffs, the splice model, logprob metrics.

Imports nothing else from ``conformance`` (dependency rule: core <- client/checks <- plugin, cli).
"""
from ._catalogue import CATALOGUE, INFO, MUST, SHOULD, CheckSpec, spec
from ._failures import CheckFailure, CheckInfo, CheckSkipped, ClientFinding, ContextOverflow, EndpointError, EndpointStopped, Evidence, TokenDiff
from ._load import Timed, endpoint_figures, max_in_flight, percentile, served_by, went_back
from ._metrics import log_softmax, logprob_metrics
from ._redact import MARKER as REDACTED, redact, redact_text, secrets_of
from ._splice import SpliceError, splice
from ._tokendiff import describe_divergence, first_difference, prefix_difference, token_diff

__all__ = [
    "CATALOGUE", "INFO", "MUST", "SHOULD", "CheckSpec", "spec", "CheckFailure", "CheckInfo", "CheckSkipped", "ClientFinding",
    "ContextOverflow", "EndpointError", "EndpointStopped", "Evidence", "TokenDiff", "log_softmax", "logprob_metrics", "SpliceError", "splice",
    "Timed", "endpoint_figures", "max_in_flight", "percentile", "served_by", "went_back",
    "describe_divergence", "first_difference", "prefix_difference", "token_diff",
    "REDACTED", "redact", "redact_text", "secrets_of",
]
