"""Chat-template rendering through the tokenizer's own ``apply_chat_template`` (no template of ours).

The server only prepares messages the way every Gym client sends them (contract §3.3, §3.4): token
fields are removed (the template never needs them), and reasoning sent under either field name is
exposed under both, because templates read ``reasoning_content`` while vLLM >= 0.16 clients send
``reasoning`` (probe P11).

Every chat call renders the whole conversation twice (the request, and the history through the last assistant
turn), so a rollout's history is tokenized again on every turn. ``SegmentEncoder`` keeps that cost to the new
turns: the rendered text is cut at the tokenizer's own added tokens (which it splits out before anything else
runs), and each piece between them is tokenized once and remembered. The ids are those of
``apply_chat_template(..., tokenize=True)`` exactly; a tokenizer for which that cannot be guaranteed is
tokenized whole, as before (``benchmarks/bench_long_history.py``). The render itself runs in transformers' Jinja
sandbox with its per-read checks remembered (``template_sandbox``).
"""
from __future__ import annotations

import inspect
import re
from collections import OrderedDict
from typing import Any

from .protocol import TOKEN_FIELDS, Message, Tool, bad_request
from .template_sandbox import chat_template_environments, remember_attribute_checks

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


class SegmentEncoder:
    """``tokenizer(text, add_special_tokens=False)["input_ids"]`` for rendered chat text, a piece at a time, cached.

    A fast (``tokenizers``) tokenizer extracts its non-normalized added tokens from the raw text first and then
    normalizes, pre-tokenizes and encodes each piece between them on its own, so the ids of a text are the ids of
    its pieces with the added tokens' ids between them. That holds here for the added tokens cut at
    (``split_tokens``): matched verbatim (not normalized, no lstrip/rstrip/single_word), extracted at all
    (``split_special_tokens`` off), and overlapping no other added token, nor themselves, so no other match can
    claim any of their characters and each occurrence in the text is one token. ``encode`` returns None when
    the tokenizer is not of that kind; the caller then tokenizes the whole text.

    Pieces are remembered least-recently-used first out, up to ``budget_chars`` characters of text (about 13 bytes
    a character with their ids, measured with tracemalloc on soak-like turns: 26 MiB by default; 64 concurrent
    rollouts at a 4k context hold about half): a
    rollout's earlier turns render to the same pieces on every call, so each call encodes only what is new.
    """

    def __init__(self, tokenizer, *, budget_chars: int = 2_000_000):
        self.tokenizer = tokenizer
        self.budget_chars, self._chars = budget_chars, 0
        self._cache: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self.split_tokens = self._split_tokens(tokenizer)
        self._split = re.compile("(" + "|".join(re.escape(c) for c in self.split_tokens) + ")") \
            if self.split_tokens else None
        if self._split is not None and not self._agrees_on_probe():
            self.split_tokens, self._split = {}, None

    def _agrees_on_probe(self) -> bool:
        """The pieces' ids are the whole text's on a probe where every cut token meets text of every kind.

        Catches what the token flags do not show, e.g. a Metaspace pre-tokenizer that prepends its space only to
        the text's first piece (``prepend_scheme: first``): each piece would then be encoded as if it came first.
        """
        words = ["hello", " world", "\n", "  x\n\n", "é€", ""]
        probe = "".join(f"{words[i % len(words)]}{tok}{words[(i + 1) % len(words)]}"
                        for i, tok in enumerate([*self.split_tokens, *self.split_tokens]))
        whole = list(self.tokenizer(probe, add_special_tokens=False)["input_ids"])
        try:
            return self.encode(probe) == whole
        finally:
            self._cache.clear()
            self._chars = 0

    @staticmethod
    def _split_tokens(tokenizer) -> dict[str, int]:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if not getattr(tokenizer, "is_fast", False) or backend is None or getattr(tokenizer, "split_special_tokens",
                                                                                    False):
            return {}
        if getattr(backend, "encode_special_tokens", False):
            return {}
        added = backend.get_added_tokens_decoder()
        if len(added) > 1 << 16:
            return {}
        contents = [t.content for t in added.values()]
        every = set(contents)
        joined = "\x00".join(contents)
        prefixes = {c[:k] for c in every for k in range(1, len(c))}
        suffixes = {c[k:] for c in every for k in range(1, len(c))}

        def alone(a: str) -> bool:
            """No other added token can match over any of ``a``'s characters, nor ``a`` over itself."""
            return (joined.count(a) == 1  # not inside another token, not listed twice
                    and not any(a[i:j] in every for i in range(len(a)) for j in range(i + 1, len(a) + 1)
                                if (i, j) != (0, len(a)))  # no token inside it
                    and not any(a[k:] in prefixes or a[:k] in suffixes for k in range(1, len(a))))  # no overlap

        return {t.content: i for i, t in added.items()
                if t.content and not (t.normalized or t.lstrip or t.rstrip or t.single_word) and alone(t.content)}

    def _encode_pieces(self, pieces: list[str]) -> list[list[int]]:
        return [list(ids) for ids in self.tokenizer(pieces, add_special_tokens=False)["input_ids"]]

    def encode(self, text: str) -> list[int] | None:
        if self._split is None:
            return None
        parts = self._split.split(text)  # text, token, text, token, ..., text
        cache = self._cache
        missing = [p for p in dict.fromkeys(parts[0::2]) if p and p not in cache]
        fresh = dict(zip(missing, self._encode_pieces(missing))) if missing else {}
        ids: list[int] = []
        for i, part in enumerate(parts):
            if i % 2:
                ids.append(self.split_tokens[part])
            elif part:
                hit = cache.get(part)
                if hit is None:
                    hit = tuple(fresh[part])
                    if len(part) <= self.budget_chars // 64:  # one huge piece never flushes the rest
                        cache[part] = hit
                        self._chars += len(part)
                else:
                    cache.move_to_end(part)
                ids.extend(hit)
        while self._chars > self.budget_chars:
            old, _ = cache.popitem(last=False)
            self._chars -= len(old)
        return ids


class ChatRenderer:
    """Renders validated messages to token ids; knows the tokenizer's EOS and whether it closes turns."""

    def __init__(self, tokenizer, *, default_chat_template_kwargs: dict[str, Any] | None = None):
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("the tokenizer has no chat template")
        self.tokenizer = tokenizer
        self.eos_id: int | None = tokenizer.eos_token_id
        self.default_kwargs = dict(default_chat_template_kwargs or {})
        self.encoder = SegmentEncoder(tokenizer)
        for env in chat_template_environments(tokenizer):  # the sandbox's checks once per (type, attribute)
            remember_attribute_checks(env)
        # apply_chat_template's own arguments: a template kwarg of one of these names changes how it tokenizes
        # (padding, truncation, ...), so such a render is left to apply_chat_template whole
        self._apply_params = frozenset(inspect.signature(tokenizer.apply_chat_template).parameters)
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
        kwargs = {**self.default_kwargs, **kwargs}
        if not self._apply_params.intersection(kwargs):
            # apply_chat_template(tokenize=True) is this text through tokenizer(text, add_special_tokens=False)
            text = self.tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=add_generation_prompt,
                                                      tokenize=False, **kwargs)
            ids = self.encoder.encode(text)
            if ids is not None:
                return ids
            return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        enc = self.tokenizer.apply_chat_template(
            messages, tools=tools, add_generation_prompt=add_generation_prompt, tokenize=True,
            return_dict=True, **kwargs)
        return list(enc["input_ids"])

    def render(self, messages: list[Message], tools: list[Tool] | None, kwargs: dict[str, Any] | None, *,
               add_generation_prompt: bool, dicts: list[dict[str, Any]] | None = None) -> list[int]:
        """Token ids of the template render; template errors become a 400 naming the template.

        ``dicts``: ``[template_message(m) for m in messages]`` when the caller has built them already (the chat path
        renders one request's messages twice). Sharing them between renders is safe: transformers renders in
        Jinja's immutable sandbox, which refuses to modify a dict or list, and copies the messages before it edits
        one itself (``continue_final_message``).
        """
        try:
            return self._apply([template_message(m) for m in messages] if dicts is None else dicts,
                               template_tools(tools), kwargs or {}, add_generation_prompt=add_generation_prompt)
        except Exception as exc:  # jinja TemplateError, raise_exception(), bad kwargs: all caller input
            raise bad_request(f"the chat template could not render these messages: {exc}", "messages") from exc

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)
