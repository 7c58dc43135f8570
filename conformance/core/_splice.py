"""The EOS-count splice of contract §7.4, written from the prose: the spec model for M2 and the M10 vectors."""
from __future__ import annotations

from typing import Iterable, Sequence


class SpliceError(AssertionError):
    """The splice is undefined for these inputs (no EOS, N-th EOS missing); contract §7.7 expects an error."""


def splice(model_prefix: Sequence[int], template_prefix: Sequence[int], template: Sequence[int],
           eos: int | Iterable[int] | None) -> list[int]:
    """``keep(M) ++ T[cut:]`` where ``cut`` is the position of the N-th EOS in T and N = #EOS in TP.

    ``eos`` may be a set of ids (the later NeMo RL revision): every member counts toward N, and a trailing
    member of M is kept instead of the template's own end token.
    """
    m, tp, t = list(model_prefix), list(template_prefix), list(template)
    if not m:  # no prior model output: the template render is served unchanged
        return t
    if eos is None:
        raise SpliceError("tokenizer has no eos_token_id; the EOS-count splice needs one")
    eos_set = {eos} if isinstance(eos, int) else set(eos)
    n = sum(1 for tok in tp if tok in eos_set)
    if n == 0:
        raise SpliceError("template prefix contains no EOS token; cannot locate the boundary")
    seen = 0
    for cut, tok in enumerate(t):
        if tok in eos_set:
            seen += 1
            if seen == n:
                break
    else:
        raise SpliceError(f"EOS token #{n} not found in the template render")
    if m[-1] in eos_set:  # the model's own end token replaces the template's one at the cut
        return m + t[cut + 1:]
    return m + t[cut:]  # truncated turn: the template supplies the end-of-turn token
