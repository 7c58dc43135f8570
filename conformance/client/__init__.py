"""The Gym-faithful client: training bodies, token extraction in Gym's source order, Responses items, rollouts."""
from ._extract import REQUIRED, Bundle, Sources, TokenMetadataError, choose, invalid_logprobs, read_sources
from ._http import ChatCall, GymClient, Stats, curl_for, split_base, tokenize_body, training_body
from ._gym import DEFAULT_GYM_VERSION, GYM_PROFILES, GymProfile, SessionRouter, endpoint_for_session, gym_profile
from ._items import parse_generation, to_messages, to_output_items
from ._rollout import Rollout, Runner, Step

__all__ = [
    "REQUIRED", "Bundle", "Sources", "TokenMetadataError", "choose", "invalid_logprobs", "read_sources",
    "ChatCall", "GymClient", "Stats", "curl_for", "split_base", "tokenize_body", "training_body",
    "DEFAULT_GYM_VERSION", "GYM_PROFILES", "GymProfile", "SessionRouter", "endpoint_for_session", "gym_profile",
    "parse_generation", "to_messages", "to_output_items", "Rollout", "Runner", "Step",
]
