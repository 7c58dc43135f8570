"""Is this dump from the tokenizer the user named? (``--tokenizer`` with ``--rollouts``; bad input, not a check.)

A dump written by a run of another model reads as valid JSON and passes every structural check, so the verdicts
would be about the wrong vocabulary. With ``--tokenizer`` the first rollouts' first prompts are decoded: each
must contain the first message text of a row of its step. Another tokenizer decodes the same ids to other text.
A prompt that holds another row's text of the same step is a mix-up of rows, not of tokenizers: R6 judges it
(the loop mutant ``rewards-shifted-after-shuffle`` was first misnamed here as a tokenizer mismatch).
"""
from __future__ import annotations

from pathlib import Path

from ...dumps import read_dump

SAMPLE = 8  # rollouts looked at: the first prompts of a run share a template, a handful is enough
STEP_ROWS = 4096  # rows of the first step whose texts a prompt may hold (a step of a large batch is bounded)


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


def _probe(text: str) -> str:
    return " ".join(text.split())[:60]


def tokenizer_mismatch(rollouts: Path, reference) -> str | None:
    """One line naming the first sampled rollout whose first prompt decodes to none of its step's row texts."""
    vocab = len(reference.tok)
    sample, texts, step = [], set(), None
    for number, line in read_dump(rollouts, "rollouts"):
        if step is not None and (line.step != step or len(texts) >= STEP_ROWS):
            break
        step = line.step
        text = _first_text(line.row)
        first = next((c.prompt_token_ids for c in line.calls if c.prompt_token_ids), None)
        if text is None:
            continue
        texts.add(_probe(text))
        if first is not None and len(sample) < SAMPLE:
            sample.append((number, first, _probe(text)))
    for number, first, probe in sample:
        if max(first) >= vocab:
            return (f"{rollouts}:{number}: prompt id {max(first)} is outside --tokenizer {reference.name}'s "
                    f"vocabulary ({vocab} ids): a dump from another tokenizer?")
        decoded = " ".join(reference.decode(first).split())
        if probe not in decoded and not any(t in decoded for t in texts):
            return (f"{rollouts}:{number}: the first prompt decodes to none of its step's row texts with "
                    f"--tokenizer {reference.name} (row: {probe[:40]!r}; decoded: {decoded[:60]!r}): a dump "
                    "from another tokenizer?")
    return None
