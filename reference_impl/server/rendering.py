"""Chat-template rendering through the tokenizer's own ``apply_chat_template`` (no template of ours).

The server only prepares messages the way every Gym client sends them (contract §3.3, §3.4): token
fields are removed (the template never needs them), and reasoning sent under either field name is
exposed under both, because templates read ``reasoning_content`` while vLLM >= 0.16 clients send
``reasoning`` (probe P11).
"""
from __future__ import annotations

from typing import Any

from .protocol import TOKEN_FIELDS, Message, Tool, bad_request

_DROP = set(TOKEN_FIELDS) | {"routed_experts"}


def template_message(msg: Message) -> dict[str, Any]:
    """The dict the Jinja template sees for one validated message."""
    out = msg.model_dump(exclude_none=True, exclude=_DROP)
    if msg.role == "assistant":
        reasoning = msg.reasoning_content if msg.reasoning_content is not None else msg.reasoning
        if reasoning is not None:
            out["reasoning_content"] = out["reasoning"] = reasoning
    return out


def template_tools(tools: list[Tool] | None) -> list[dict[str, Any]] | None:
    return [t.model_dump(exclude_none=True) for t in tools] if tools else None


class ChatRenderer:
    """Renders validated messages to token ids; knows the tokenizer's EOS and whether it closes turns."""

    def __init__(self, tokenizer, *, default_chat_template_kwargs: dict[str, Any] | None = None):
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("the tokenizer has no chat template")
        self.tokenizer = tokenizer
        self.eos_id: int | None = tokenizer.eos_token_id
        self.default_kwargs = dict(default_chat_template_kwargs or {})
        self.eos_closes_turns = self._eos_closes_turns()

    def _eos_closes_turns(self) -> bool:
        """Contract §7.9 row 1: EOS must be the token that closes a rendered assistant turn (probe P21)."""
        if self.eos_id is None:
            return False
        probe = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
        try:
            ids = self._apply(probe, None, {}, add_generation_prompt=False)
        except Exception:  # a template that cannot render the probe says nothing about EOS; assume it is fine
            return True
        return self.eos_id in ids

    def _apply(self, messages: list[dict], tools, kwargs: dict, *, add_generation_prompt: bool) -> list[int]:
        enc = self.tokenizer.apply_chat_template(
            messages, tools=tools, add_generation_prompt=add_generation_prompt, tokenize=True,
            return_dict=True, **{**self.default_kwargs, **kwargs})
        return list(enc["input_ids"])

    def render(self, messages: list[Message], tools: list[Tool] | None, kwargs: dict[str, Any] | None, *,
               add_generation_prompt: bool) -> list[int]:
        """Token ids of the template render; template errors become a 400 naming the template."""
        try:
            return self._apply([template_message(m) for m in messages], template_tools(tools), kwargs or {},
                               add_generation_prompt=add_generation_prompt)
        except Exception as exc:  # jinja TemplateError, raise_exception(), bad kwargs: all caller input
            raise bad_request(f"the chat template could not render these messages: {exc}", "messages") from exc

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)
