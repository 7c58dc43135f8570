"""The reference side of template-level comparisons: a local Hugging Face tokenizer and its chat template.

Renders the way vLLM's chat path does (template to string, then encode without special tokens), and
searches the vocabulary for words whose sampled split differs from the canonical encoding (probes P01/P02).
"""
from __future__ import annotations

import functools
import gc
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Split:
    """A word the model can sample as ``sampled`` while the tokenizer re-encodes its text as ``canonical``."""

    text: str
    sampled: tuple[int, ...]
    canonical: tuple[int, ...]


class Reference:
    def __init__(self, name_or_path: str) -> None:
        from transformers import AutoTokenizer  # heavy import kept at the edge that needs it

        self.name = name_or_path
        self.tok = AutoTokenizer.from_pretrained(name_or_path)
        self.eos: int | None = self.tok.eos_token_id
        # The tokenizer and transformers' modules live for the whole run. Moving them to the permanent
        # generation keeps every later full collection from re-walking them -- hypothesis runs one
        # (gc.collect + gc.get_referrers) when it first seeds a thread, ~0.25 s cold with this heap.
        # Scoped to the run: :meth:`release` (called when the session's context closes) unfreezes.
        gc.freeze()

    def release(self) -> None:
        """End the gc freeze of __init__, so the user's process collects normally after the suite."""
        gc.unfreeze()

    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int], *, skip_special_tokens: bool = False) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def render_text(self, messages: list[dict[str, Any]], *, tools: list[dict] | None = None,
                    add_generation_prompt: bool = True, **kwargs: Any) -> str:
        return self.tok.apply_chat_template(_plain(messages), tools=tools, tokenize=False,
                                            add_generation_prompt=add_generation_prompt, **kwargs)

    def render(self, messages: list[dict[str, Any]], **kw: Any) -> list[int]:
        return self.encode(self.render_text(messages, **kw))

    @functools.cached_property
    def vocab(self) -> dict[str, int]:
        return self.tok.get_vocab()  # builds a fresh dict on every call: keep one

    @functools.cached_property
    def special_ids(self) -> frozenset[int]:
        return frozenset(self.tok.all_special_ids)

    @functools.lru_cache(maxsize=65536)
    def piece(self, token_id: int) -> str:
        return self.tok.convert_ids_to_tokens(token_id)

    @functools.cached_property
    def splits(self) -> tuple[Split | None, Split | None]:
        """(merge case, different-split case) found in the vocabulary, or None when absent."""
        return find_splits(self)


def _plain(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as templates see them: tool-call arguments stay JSON strings (the OpenAI wire form)."""
    return [dict(m) for m in messages]


_PREFERRED = (" Skinny",)  # the NeMo RL golden case first, when the vocabulary has it


def find_splits(ref: Reference, limit: int = 60000) -> tuple[Split | None, Split | None]:
    """Scan the vocabulary for a merge case (P01) and a different-split case (P02).

    Merge: two vocab pieces a+b whose text re-encodes to one id. Different split: a word piece followed
    by a short continuation piece whose joined text re-encodes to two *other* ids.
    """
    tok = ref.tok
    vocab = ref.vocab
    merge = different = None
    for text in _PREFERRED:
        ids = ref.encode(text)
        if len(ids) == 1:
            merge = _split_of(ref, vocab, tok.convert_ids_to_tokens(ids[0]), text)
    specials = ref.special_ids
    words = [(piece, tid) for piece, tid in sorted(vocab.items(), key=lambda kv: kv[1])[:limit]
             if tid not in specials and piece.lstrip("Ġ▁").isalpha() and piece.lstrip("Ġ▁").isascii()]
    tails = ("s", "er", "ing", "ed", "ly", "al", "es", "en", "y", "e", "t", "n", "d", "r")
    for piece, tid in words:
        if merge and different:
            break
        if len(piece) < 5:
            continue
        if merge is None:
            merge = _split_of(ref, vocab, piece, ref.decode([tid]))
        if different is None and piece[0] in "Ġ▁":
            different = _different(ref, vocab, piece, tails)
    return merge, different


def _split_of(ref: Reference, vocab: dict[str, int], piece: str, text: str) -> Split | None:
    canonical = ref.encode(text)
    for cut in range(2, len(piece) - 1):
        a, b = vocab.get(piece[:cut]), vocab.get(piece[cut:])
        if a is not None and b is not None and ref.decode([a, b]) == text and [a, b] != canonical:
            return Split(text, (a, b), tuple(canonical))
    return None


def _different(ref: Reference, vocab: dict[str, int], piece: str, tails: tuple[str, ...]) -> Split | None:
    """Sampled ``[piece[:cut], piece[cut:] + tail]`` whose text re-encodes to two *other* ids (e.g. [piece, tail])."""
    for cut in range(2, len(piece) - 1):
        head = vocab.get(piece[:cut])
        if head is None:
            continue
        for tail in tails:
            rest = vocab.get(piece[cut:] + tail)
            if rest is None:
                continue
            joined = ref.decode([head, rest])
            canonical = ref.encode(joined)
            if len(canonical) == 2 and canonical != [head, rest] and "\ufffd" not in joined:
                return Split(joined, (head, rest), tuple(canonical))
    return None
