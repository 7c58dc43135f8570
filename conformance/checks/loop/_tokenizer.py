"""Is this dump from the tokenizer the user named? (``--tokenizer`` with ``--rollouts``; bad input, not a check.)

A dump written by a run of another model reads as valid JSON and passes every structural check, so the verdicts
would be about the wrong vocabulary. With ``--tokenizer`` the first rollouts' first prompts are decoded: each
must contain its row's first message text. Another tokenizer decodes the same ids to other text.
"""
from __future__ import annotations

from pathlib import Path

from ...dumps import read_dump

SAMPLE = 8  # rollouts looked at: the first prompts of a run share a template, a handful is enough


def _first_text(row: dict) -> str | None:
    items = (row.get("responses_create_params") or {}).get("input")
    if isinstance(items, str):
        return items
    for item in items or []:
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if isinstance(content, str) and content.strip():
            return content
    return None


def tokenizer_mismatch(rollouts: Path, reference) -> str | None:
    """One line naming the first rollout whose first prompt does not decode to its row's text, or None."""
    vocab = len(reference.tok)
    for seen, (number, line) in enumerate(read_dump(rollouts, "rollouts")):
        if seen >= SAMPLE:
            break
        first = next((c.prompt_token_ids for c in line.calls if c.prompt_token_ids), None)
        text = _first_text(line.row)
        if first is None or text is None:
            continue
        if max(first) >= vocab:
            return (f"{rollouts}:{number}: prompt id {max(first)} is outside --tokenizer {reference.name}'s "
                    f"vocabulary ({vocab} ids): a dump from another tokenizer?")
        decoded = reference.decode(first)
        probe = " ".join(text.split())[:60]
        if probe not in " ".join(decoded.split()):
            return (f"{rollouts}:{number}: the first prompt does not decode to its row's text with --tokenizer "
                    f"{reference.name} (row: {probe[:40]!r}; decoded: {decoded[:60]!r}): a dump from another "
                    "tokenizer?")
    return None
