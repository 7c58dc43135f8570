"""Token metadata from a chat completion, in NeMo Gym's source order and with Gym's consistency rules (§4).

Pure: no IO. Source 3 needs the prompt ids from ``/tokenize``; :func:`read_sources` reports that need
and the client performs the call.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..core import EndpointError

REQUIRED = ("prompt_token_ids", "generation_token_ids", "generation_log_probs")
_TOKEN_ID = re.compile(r"token_id:(-?\d+)")


class TokenMetadataError(EndpointError):
    """One of Gym's extraction rules is violated; ``rule`` names it, the message quotes Gym's error text.

    An ``EndpointError``: Gym itself raises on these, so a check that needs the bundle fails with this cause
    (the response it came from is attached where the call is known), never with a harness traceback.
    """

    def __init__(self, rule: str, message: str) -> None:
        self.rule = rule
        super().__init__(message)


@dataclass
class Bundle:
    """The three training fields of one model call (plus optional ``routed_experts``)."""

    prompt_token_ids: list[int]
    generation_token_ids: list[int]
    generation_log_probs: list[float]
    source: str  # "message" | "inline" | "logprobs"
    routed_experts: Any = None

    def fields(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in REQUIRED}
        if self.routed_experts is not None:
            out["routed_experts"] = self.routed_experts
        return out


@dataclass
class Sources:
    """Every token source present in one response, before choosing: the raw material for E3/E5/E19."""

    message: dict[str, Any] | None = None        # message-level bundle fields
    inline_prompt: list[int] | None = None       # top-level prompt_token_ids
    inline_generation: list[int] | None = None   # choices[0].token_ids
    logprob_ids: list[int] | None = None         # parsed from token_id:N strings
    logprob_values: list[float] | None = None
    logprob_tokens: list[str] = field(default_factory=list)
    logprobs_problem: str | None = None          # why choice.logprobs is unusable, if it is


def _choice(response: dict[str, Any]) -> dict[str, Any]:
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise TokenMetadataError("choices", "response has no choices[0] object")
    return choices[0]


def _logprobs(choice: dict[str, Any], src: Sources) -> None:
    content = (choice.get("logprobs") or {}).get("content") if isinstance(choice.get("logprobs"), dict) else None
    if not isinstance(content, list) or not content:
        src.logprobs_problem = "requested per-token logprobs from vLLM but the response had none"
        return
    ids, values = [], []
    for i, entry in enumerate(content):
        token = entry.get("token") if isinstance(entry, dict) else None
        value = entry.get("logprob") if isinstance(entry, dict) else None
        src.logprob_tokens.append(token if isinstance(token, str) else repr(token))
        match = _TOKEN_ID.fullmatch(token) if isinstance(token, str) else None
        # bool is an int subclass: Gym rejects it explicitly, and so do we
        if match is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            src.logprobs_problem = f"logprobs.content[{i}] is not a token_id:N entry with a numeric logprob: " \
                                   f"{entry!r:.120}"
            return
        ids.append(int(match.group(1)))
        values.append(float(value))
    src.logprob_ids, src.logprob_values = ids, values


def read_sources(response: dict[str, Any]) -> Sources:
    """Collect all three sources without judging them (raises only when there is no ``choices[0]``)."""
    choice = _choice(response)
    src = Sources()
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    present = {k: message[k] for k in (*REQUIRED, "routed_experts") if message.get(k) is not None}
    if any(k in present for k in REQUIRED):
        src.message = present
    src.inline_prompt = response.get("prompt_token_ids")
    src.inline_generation = choice.get("token_ids")
    _logprobs(choice, src)
    return src


def _ints(name: str, value: Any) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise TokenMetadataError("types", f"{name} must be a list of ints, got {value!r:.80}")
    return value


def choose(src: Sources, tokenized_prompt: list[int] | None = None) -> Bundle:
    """Apply Gym's source order and consistency rules; ``tokenized_prompt`` feeds source 3.

    Raises :class:`TokenMetadataError` with Gym's own wording so failures read like the crash a
    training run would have hit.
    """
    if src.message is not None:
        missing = [k for k in REQUIRED if k not in src.message]
        if missing:
            raise TokenMetadataError("atomic", f"Token metadata must include all required fields; missing: "
                                               f"{', '.join(missing)}")
    if (src.inline_prompt is None) != (src.inline_generation is None):
        missing = "prompt_token_ids" if src.inline_prompt is None else "choices[0].token_ids"
        raise TokenMetadataError("inline-partial", f"vLLM response returned partial token metadata; missing: {missing}")
    if src.message is not None:
        m = src.message
        bundle = Bundle(_ints("prompt_token_ids", m["prompt_token_ids"]),
                        _ints("generation_token_ids", m["generation_token_ids"]),
                        list(m["generation_log_probs"]) if isinstance(m["generation_log_probs"], list) else
                        _fail_list("generation_log_probs", m["generation_log_probs"]),
                        "message", m.get("routed_experts"))
        if src.inline_prompt is not None and (src.inline_prompt != bundle.prompt_token_ids or
                                              src.inline_generation != bundle.generation_token_ids):
            raise TokenMetadataError("bundle-vs-inline",
                                     "Message-level token metadata disagrees with vLLM response token IDs")
    elif src.inline_prompt is not None:
        if src.logprob_ids is None:
            raise TokenMetadataError("logprobs", src.logprobs_problem or "no per-token logprobs")
        if src.inline_generation != src.logprob_ids:
            raise TokenMetadataError("inline-vs-logprobs", "vLLM response generation token IDs disagree with "
                                                           "choice logprob token IDs")
        bundle = Bundle(_ints("prompt_token_ids", src.inline_prompt),
                        _ints("choices[0].token_ids", src.inline_generation), list(src.logprob_values or []),
                        "inline")
    else:
        if src.logprob_ids is None:
            raise TokenMetadataError("logprobs", src.logprobs_problem or "no per-token logprobs")
        if tokenized_prompt is None:
            raise TokenMetadataError("tokenize", "no prompt ids in the response and /tokenize gave none")
        bundle = Bundle(_ints("/tokenize tokens", tokenized_prompt), src.logprob_ids, list(src.logprob_values or []),
                        "logprobs")
    if len(bundle.generation_token_ids) != len(bundle.generation_log_probs):
        raise TokenMetadataError("lengths", f"mismatched generation token IDs and log probabilities: "
                                            f"{len(bundle.generation_token_ids)} ids vs "
                                            f"{len(bundle.generation_log_probs)} log probs")
    return bundle


def _fail_list(name: str, value: Any) -> list:
    raise TokenMetadataError("types", f"{name} must be a list, got {value!r:.80}")


def invalid_logprobs(values: list[float]) -> list[tuple[int, Any]]:
    """Positions whose log prob is not a finite number <= 0 (the -9999.0 floor is allowed)."""
    bad = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or math.isinf(v) or v > 0:
            bad.append((i, v))
    return bad
