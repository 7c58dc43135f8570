"""The reference side of template-level comparisons: a local Hugging Face tokenizer and its chat template.

Renders the way vLLM's chat path does (template to string, then encode without special tokens), and
searches the vocabulary for words whose sampled split differs from the canonical encoding (probes P01/P02).
"""
from __future__ import annotations

import functools
import gc
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable


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

    @functools.cached_property
    def size(self) -> int:
        """How many ids the tokenizer has (added tokens included): it decodes ``0 .. size - 1`` and no other."""
        return len(self.tok)

    @functools.cached_property
    def model_vocab_size(self) -> int | None:
        """The model's embedding rows, from ``config.json`` beside the tokenizer (None without one)."""
        return model_vocab_size(self.name)

    def outside(self, ids: Iterable[int], limit: int | None = None) -> list[tuple[int, int]]:
        """``(position, id)`` of each id outside ``0 .. limit - 1`` (default: the tokenizer's :attr:`size`)."""
        limit = self.size if limit is None else limit
        return [(i, t) for i, t in enumerate(ids) if not _known(t, limit)]

    def decode(self, ids: list[int], *, skip_special_tokens: bool = False, unknown: str = "mark") -> str:
        """The text of ``ids``; an id the tokenizer does not have reads ``⟨unknown id N⟩`` (``unknown="drop"``:
        nothing, as a server's detokenizer shows a padding row the model sampled).

        Hugging Face tokenizers drop such ids silently (and overflow on negative or huge ones), which would make
        a served prompt in another vocabulary read as its few decodable ids: the verdicts must show them.
        """
        ids, size = list(ids), self.size
        if all(_known(t, size) for t in ids):
            return self.tok.decode(ids, skip_special_tokens=skip_special_tokens)
        parts: list[str] = []
        run: list[int] = []
        for t in [*ids, None]:
            if t is not None and _known(t, size):
                run.append(t)
                continue
            if run:
                parts.append(self.tok.decode(run, skip_special_tokens=skip_special_tokens))
                run = []
            if t is not None and unknown != "drop":
                parts.append(unknown_id(t))
        return "".join(parts)

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
    def piece(self, token_id: int) -> str | None:
        return self.tok.convert_ids_to_tokens(token_id) if _known(token_id, self.size) else None

    @functools.cached_property
    def splits(self) -> tuple[Split | None, Split | None]:
        """(merge case, different-split case) found in the vocabulary, or None when absent."""
        return find_splits(self)


def _known(token_id: Any, size: int) -> bool:
    return isinstance(token_id, int) and not isinstance(token_id, bool) and 0 <= token_id < size


def unknown_id(token_id: Any) -> str:
    """How decoded text shows an id the tokenizer does not have."""
    return f"⟨unknown id {token_id!r}⟩"


def model_vocab_size(*directories: str | None) -> int | None:
    """``vocab_size`` from the first of ``directories`` whose ``config.json`` has one (``text_config`` too)."""
    for where in directories:
        try:
            cfg = json.loads((Path(where) / "config.json").read_text()) if where else None
        except (OSError, ValueError):
            continue
        cfg = cfg if isinstance(cfg, dict) else {}
        text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else {}
        size = cfg.get("vocab_size") or text.get("vocab_size")
        if isinstance(size, int) and not isinstance(size, bool):
            return size
    return None


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
