"""Request bodies (pydantic) and the OpenAI-style error the server answers every bad input with.

Types are strict where a wrong type would otherwise be coerced silently ("10" as max_tokens, 1 as
a bool): bad input must come back as a 4xx naming the field (issue 3), never reach the engine.
Unknown top-level fields are ignored, as vLLM and Gym's own chat model do (contract §3.2).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr,
                      ValidationError, field_validator, model_validator)

TOKEN_FIELDS = ("prompt_token_ids", "generation_token_ids", "generation_log_probs")
MAX_TOKENS_LIMIT = 2**31 - 1  # anything larger cannot be meant and overflows engine int32 fields
MAX_MESSAGES = 4096  # a rollout of a few hundred turns is long; thousands more only cost the server render time
Number = StrictFloat | StrictInt


class ApiError(Exception):
    """Rendered as ``{"error": {"message", "type", "code", "param"}}`` with ``status`` (contract §5, E23)."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 type: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.type = status, message, param, type

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "code": self.status, "param": self.param}}


def bad_request(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param=param)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FunctionDef(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: StrictStr
    description: StrictStr | None = None
    parameters: dict[str, Any] | None = None


class Tool(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["function"] = "function"
    function: FunctionDef


class ToolCallFunction(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: StrictStr
    arguments: StrictStr | dict[str, Any]


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: StrictStr | None = None
    type: Literal["function"] = "function"
    function: ToolCallFunction


class Message(BaseModel):
    """One chat message; assistant messages may carry the token bundle of contract §3.3."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: StrictStr | list[dict[str, Any]] | None = None
    name: StrictStr | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: StrictStr | None = None
    reasoning_content: StrictStr | None = None
    reasoning: StrictStr | None = None
    prompt_token_ids: list[StrictInt] | None = None
    generation_token_ids: list[StrictInt] | None = None
    generation_log_probs: list[Number] | None = None
    routed_experts: Any = None

    @model_validator(mode="after")
    def _atomic_bundle(self) -> "Message":
        # Contract §4.2 atomic rule; §7.9 / P19 empty lists are refused, never silently un-spliced.
        present = [f for f in TOKEN_FIELDS if getattr(self, f) is not None]
        if not present:
            return self
        if self.role != "assistant":
            raise ValueError(f"token fields ({', '.join(present)}) are only accepted on assistant messages "
                             "(contract §3.3, M9)")
        missing = [f for f in TOKEN_FIELDS if getattr(self, f) is None]
        if missing:
            raise ValueError(f"partial token bundle: has {', '.join(present)} but is missing {', '.join(missing)} "
                             "(contract §4.2: all three or none)")
        if not self.prompt_token_ids:
            raise ValueError("prompt_token_ids is empty: an empty prefix cannot be spliced (contract §7.9, P19)")
        if not self.generation_token_ids:
            raise ValueError("generation_token_ids is empty: an empty generation cannot be spliced "
                             "(contract §7.9, P19)")
        if len(self.generation_token_ids) != len(self.generation_log_probs):
            raise ValueError(f"mismatched generation token IDs ({len(self.generation_token_ids)}) and log "
                             f"probabilities ({len(self.generation_log_probs)})")
        return self

    @property
    def has_bundle(self) -> bool:
        return self.prompt_token_ids is not None


class _Sampling(_Model):
    temperature: Number | None = Field(default=None, ge=0.0, le=100.0)
    top_p: Number | None = Field(default=None, gt=0.0, le=1.0)
    top_k: StrictInt | None = None
    n: StrictInt | None = None
    seed: StrictInt | None = None
    stop: StrictStr | list[StrictStr] | None = None
    stop_token_ids: list[StrictInt] | None = None
    stream: StrictBool | None = None
    return_tokens_as_token_ids: StrictBool | None = None
    return_token_ids: StrictBool | None = None

    @field_validator("top_k")
    @classmethod
    def _top_k(cls, v):
        # Contract §8.5: top_k must be unset or -1 (top_k=0 means the same in vLLM).
        if v is not None and v not in (-1, 0):
            raise ValueError("top_k must be unset or -1: the on-policy sampling pin forbids top-k (contract §8.5)")
        return v

    @field_validator("n")
    @classmethod
    def _n(cls, v):
        if v is not None and v != 1:
            raise ValueError("n must be absent or 1 (contract §3.1, E11)")
        return v

    @field_validator("stop", "stop_token_ids")
    @classmethod
    def _no_stop(cls, v):
        # §7.9 last row: model-emitted stop text differs from the template -> EOS doubling (D19).
        if v:
            raise ValueError("stop strings and stop_token_ids are not supported on the training path: the "
                             "model stops on EOS only (contract §7.9, §9.1)")
        return None

    @field_validator("stream")
    @classmethod
    def _no_stream(cls, v):
        if v:
            raise ValueError("streaming is not supported by this server; send stream: false")
        return v


class ChatRequest(_Sampling):
    model: StrictStr | None = None
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    tools: list[Tool] | None = None
    tool_choice: StrictStr | dict[str, Any] | None = None
    parallel_tool_calls: StrictBool | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    max_tokens: StrictInt | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    logprobs: StrictBool | None = None
    top_logprobs: StrictInt | None = Field(default=None, ge=0, le=20)
    include_reasoning: StrictBool = True
    required_prefix_token_ids: list[StrictInt] | None = None

    @field_validator("tool_choice")
    @classmethod
    def _tool_choice(cls, v):
        if isinstance(v, str) and v not in ("none", "auto", "required"):
            raise ValueError("tool_choice must be 'none', 'auto', 'required' or a named function")
        return v

    @field_validator("required_prefix_token_ids")
    @classmethod
    def _prefix(cls, v):
        if v is not None and not v:
            raise ValueError("required_prefix_token_ids is empty; omit it or send the prefix ids "
                             "(contract §7.9, P19)")
        return v

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class TokenizeRequest(_Model):
    """``/tokenize``: the chat body (contract §4.3), or ``{"prompt": str}`` like vLLM's completion form."""

    model: StrictStr | None = None
    messages: list[Message] | None = Field(default=None, min_length=1, max_length=MAX_MESSAGES)
    prompt: StrictStr | None = None
    tools: list[Tool] | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    required_prefix_token_ids: list[StrictInt] | None = None
    add_special_tokens: StrictBool = True

    @model_validator(mode="after")
    def _one_form(self) -> "TokenizeRequest":
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("send exactly one of messages or prompt")
        if self.required_prefix_token_ids is not None and not self.required_prefix_token_ids:
            raise ValueError("required_prefix_token_ids is empty (contract §7.9, P19)")
        return self


class DetokenizeRequest(_Model):
    model: StrictStr | None = None
    tokens: list[StrictInt]


class CompletionRequest(_Sampling):
    """``/v1/completions`` for teacher-forced rescoring (probe P16): token-id prompts, echo, prompt logprobs."""

    model: StrictStr | None = None
    prompt: list[StrictInt] | list[list[StrictInt]] | StrictStr
    max_tokens: StrictInt | None = Field(default=None, ge=0, le=MAX_TOKENS_LIMIT)
    echo: StrictBool = False
    logprobs: StrictInt | None = Field(default=None, ge=0, le=20)
    prompt_logprobs: StrictInt | None = Field(default=None, ge=0, le=20)
    # vLLM's constrained decoding, as the remote engine sends it for a forced tool choice; only the JSON-schema
    # form is served (anything else is a clear 400, never silently ignored)
    structured_outputs: dict[str, Any] | None = None

    @field_validator("structured_outputs")
    @classmethod
    def _json_schema_only(cls, v):
        if v is not None and (set(v) != {"json"} or not isinstance(v["json"], dict)):
            raise ValueError('only {"json": <JSON schema object>} is supported')
        return v

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, v):
        if isinstance(v, list) and v and isinstance(v[0], list):
            if len(v) != 1:
                raise ValueError("exactly one prompt per request (n=1 training path)")
            v = v[0]
        if isinstance(v, list) and not v:
            raise ValueError("prompt is empty")
        return v


class ReloadRequest(_Model):
    path: StrictStr


_TYPE_TAGS = {"str", "int", "float", "bool", "list", "dict", "none", "tuple"}


def describe_validation_error(err: ValidationError) -> ApiError:
    """First pydantic error as a 400 whose ``param`` is the dotted field path (issue 3: 'naming the field')."""
    first = err.errors()[0]
    # Union members appear in loc as type tags ("float", "list[int]"): keep only field names and indexes.
    loc = ".".join(str(p) for p in first.get("loc", ())
                   if isinstance(p, int) or not (p in _TYPE_TAGS or "[" in p or "-" in p))
    msg = first.get("msg", "invalid value")
    msg = msg.removeprefix("Value error, ")
    return bad_request(f"{loc}: {msg}" if loc else msg, param=loc or None)
