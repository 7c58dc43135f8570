"""The NeMo Gym versions the client models, and what differs between them (docs/gym-versions.md).

Each difference is a named flag read by the conversions in ``_items`` and by :class:`SessionRouter` below;
nothing else in the harness branches on a version string. Every flag is proven against the real Gym of that version by the
differential tests in ``tests/gym/`` (Gym's own converter and ``vllm_model`` server run beside ours).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class GymProfile:
    """How one Gym version turns Responses items into the chat body it sends, and chat replies into items."""

    version: str
    # 0.4.0: an assistant run with no text and no tool calls is not sent at all, its token ids with it, so a
    # rollout where the model answered only the end-of-turn token and the conversation went on is
    # non-contiguous whatever the endpoint does. 0.7.0 sends it with ``content: null``.
    drops_empty_assistant: bool
    # 0.4.0: the token bundle of a run survives a flush and rides on the next assistant message sent,
    # when that message carries none of its own; 0.7.0 clears it with every flush.
    bundle_outlives_flush: bool
    # 0.4.0 lists ``tool_calls`` on every assistant message (``[]`` when there are none).
    always_lists_tool_calls: bool
    # 0.4.0 takes a bundle from an item only when ``prompt_token_ids`` is non-empty; 0.7.0 whenever the
    # field is present (and rejects a partial bundle: any of the three fields requires all three).
    bundle_needs_nonempty_prompt: bool
    # 0.7.0 carries assistant refusals (content parts of type ``refusal``) through both directions.
    carries_refusals: bool
    # 0.7.0 turns a list-valued tool output (``input_text`` parts) into chat text parts; 0.4.0 passes it as is.
    converts_list_outputs: bool
    # 0.7.0 takes ``routed_experts`` as an opaque string envelope (NeMo RL's ``"nrlre1:..."``) as well as nested
    # lists; 0.4.0 only nested lists, and an item whose envelope is a string silently loses its whole bundle.
    routed_experts_envelope: bool
    # Gym's ``request_prompt_and_generation_token_ids`` exists (0.7.0): it adds ``return_token_ids: true``
    # so a vLLM-native endpoint returns prompt and generation ids inline. 0.4.0 always used
    # the logprob tokens and ``/tokenize``.
    supports_inline_ids: bool
    # Which data-parallel endpoint a session's calls go to (``_resolve_client``): 0.4.0 gives each new session the
    # next endpoint in turn, by order of first call; 0.7.0 hashes the session id (SHA-256, first 8 bytes big-endian,
    # modulo the count) so that every uvicorn worker sends a session to the same rank.
    hashes_session_affinity: bool


GYM_PROFILES: dict[str, GymProfile] = {
    "0.4.0": GymProfile("0.4.0", drops_empty_assistant=True, bundle_outlives_flush=True, always_lists_tool_calls=True,
                        bundle_needs_nonempty_prompt=True, carries_refusals=False, converts_list_outputs=False,
                        routed_experts_envelope=False, supports_inline_ids=False,
                        hashes_session_affinity=False),
    "0.7.0": GymProfile("0.7.0", drops_empty_assistant=False, bundle_outlives_flush=False,
                        always_lists_tool_calls=False, bundle_needs_nonempty_prompt=False, carries_refusals=True,
                        converts_list_outputs=True, routed_experts_envelope=True, supports_inline_ids=True,
                        hashes_session_affinity=True),
}
DEFAULT_GYM_VERSION = "0.7.0"  # the newest verified version


def gym_profile(version: str | None = None) -> GymProfile:
    """The profile of a verified Gym version; a clear ``ValueError`` naming the known ones otherwise."""
    version = version or DEFAULT_GYM_VERSION
    try:
        return GYM_PROFILES[version]
    except KeyError:
        raise ValueError(f"unknown Gym version {version!r}; verified versions: {', '.join(GYM_PROFILES)}") from None



class SessionRouter:
    """Gym's session affinity over ``endpoints`` data-parallel servers: ``route(session_id)`` is the index of the
    endpoint every call of that session goes to, as the profile's Gym version picks it."""

    def __init__(self, endpoints: int, gym: GymProfile) -> None:
        self.endpoints, self.gym = endpoints, gym
        self._assigned: dict[str, int] = {}

    def route(self, session_id: str) -> int:
        if session_id not in self._assigned:
            self._assigned[session_id] = endpoint_for_session(session_id, self.endpoints) \
                if self.gym.hashes_session_affinity else len(self._assigned) % self.endpoints
        return self._assigned[session_id]


def endpoint_for_session(session_id: str, endpoints: int) -> int:
    """Which of ``endpoints`` data-parallel servers Gym's ``vllm_model`` sends a session to (0.7.0
    ``_resolve_client``): the first 8 bytes of the session id's SHA-256, big-endian, modulo the count, so every
    call of a rollout reaches the rank that holds its prefix cache."""
    digest = hashlib.sha256(session_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % endpoints
