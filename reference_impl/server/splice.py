"""The EOS-count splice of contract §7.4, written for this server (pure; no tokenizer, no IO).

The harness has its own implementation in ``conformance/``; both are tested against the contract's
unit vectors (§7.7) so that a bug in one is caught by the other (ARCHITECTURE.md, dependency rule).
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from itertools import compress


class SpliceError(ValueError):
    """The prefix cannot be spliced onto the template render; the message names the reason."""


def _as_set(eos: int | Collection[int] | None) -> frozenset[int]:
    if eos is None:
        return frozenset()
    if isinstance(eos, int):
        return frozenset({eos})
    return frozenset(eos)


def _count(ids: Sequence[int], members: frozenset[int]) -> int:
    """How many of ``ids`` are in ``members`` (looped in C: every call counts over the whole rendered history)."""
    return sum(map(members.__contains__, ids))


def splice(model_prefix: Sequence[int], template_prefix: Sequence[int], template: Sequence[int],
           eos: int | Collection[int] | None, *, stop_ids: Collection[int] = ()) -> list[int]:
    """Serve ``model_prefix`` followed by the template render from the N-th end-of-turn token on (§7.4).

    - ``model_prefix`` (M) = P_k + G_k of the previous call, verbatim; ``template_prefix`` (TP) = render
      through the boundary assistant message without generation prompt; ``template`` (T) = render of
      the whole request with the generation prompt.
    - ``eos`` is the tokenizer's EOS id, or a set of ids (the later NeMo RL revision): every member
      counts toward N.
    - ``stop_ids`` are further ids the engine stops on (e.g. generation_config's extra EOS) that do not
      count toward N. If M ends on any EOS or stop id that exact id is kept and the template's
      end-of-turn token is skipped, so the result always starts with M (contract §7.7, last line)
      and never carries two end tokens (§7.9, second row).

    Raises ``SpliceError`` when EOS is undefined, TP holds no EOS, or T holds fewer than N.
    """
    if not model_prefix:
        return list(template)
    eos_set = _as_set(eos)
    if not eos_set:
        raise SpliceError("the tokenizer defines no eos_token_id, so the prefix cannot be spliced (contract §7.4)")
    n = _count(template_prefix, eos_set)
    if n == 0:
        raise SpliceError("the rendered history through the last assistant message contains no EOS token: "
                          "the tokenizer's EOS is not the chat template's end-of-turn token (contract §7.9)")
    ends = list(compress(range(len(template)), map(eos_set.__contains__, template)))  # where T's EOS are
    if len(ends) < n:
        raise SpliceError(f"EOS token #{n} not found in the rendered prompt "
                          f"(it has {len(ends)}); the history is not monotonic (contract §7.4 step 5)")
    cut = ends[n - 1]
    if model_prefix[-1] in eos_set or model_prefix[-1] in stop_ids:
        return [*model_prefix, *template[cut + 1:]]
    # Truncated by max_tokens: the template supplies the end-of-turn token (§7.6 b, probe P04).
    return [*model_prefix, *template[cut:]]


def expected_prefix_eos_count(model_prefix: Sequence[int], template_prefix: Sequence[int],
                              eos: int | Collection[int], *, stop_ids: Collection[int] = ()) -> tuple[int, int]:
    """(turns M closes, the count a monotonic history implies) -- equal unless turns were added or removed.

    Every rendered turn closes with exactly one EOS (§7.5, gen 3 assumption), and M = P_k + G_k covers
    the same turns as TP, less the boundary assistant's closing EOS when G_k did not end on EOS
    (truncated). A mismatch means the history before the boundary was edited (summarised, truncated, a
    message dropped by the template: contract §7.9, D10, P20).

    A turn the model closed with another stop id (Qwen3's generation config also stops on
    ``<|endoftext|>``) is spliced with that id kept in place of the template's EOS, so stop ids close
    turns too: counted on both sides, or every carried prefix after such a turn is one turn short.
    """
    closers = _as_set(eos) | frozenset(stop_ids)
    have, want = _count(model_prefix, closers), _count(template_prefix, closers)
    if not model_prefix or model_prefix[-1] not in closers:
        want -= 1
    return have, want
