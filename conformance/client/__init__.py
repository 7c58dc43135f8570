"""The Gym-faithful client: training bodies, token extraction in Gym's source order, Responses items, rollouts."""
from ._extract import REQUIRED, Bundle, Sources, TokenMetadataError, choose, invalid_logprobs, read_sources
from ._http import ChatCall, GymClient, Stats, curl_for, split_base, tokenize_body, training_body
from ._items import parse_generation, to_messages, to_output_items
from ._rollout import Rollout, Runner, Step

__all__ = [
    "REQUIRED", "Bundle", "Sources", "TokenMetadataError", "choose", "invalid_logprobs", "read_sources",
    "ChatCall", "GymClient", "Stats", "curl_for", "split_base", "tokenize_body", "training_body",
    "parse_generation", "to_messages", "to_output_items", "Rollout", "Runner", "Step",
]
