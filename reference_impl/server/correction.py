"""The on-policy correction: which prompt ids the engine is given for a chat body (contract §7).

Pure over validated messages plus a renderer. Used identically by ``/v1/chat/completions`` and
``/tokenize`` so the two always agree (contract §8.6, probe P17). Every case the contract calls a
silent failure elsewhere (§7.9) is refused here with a 400 that names the problem.
"""
from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from .protocol import ApiError, Message, Tool, bad_request
from .rendering import ChatRenderer, template_message
from .splice import SpliceError, expected_prefix_eos_count, splice

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_THINK_TAGS = re.compile(r"</?think>")  # reasoning parsers drop stray tags from the text they return


@dataclass(frozen=True)
class PrefixChoice:
    """M (the ids the model actually saw and sampled) and the boundary message for TP (§7.3)."""

    model_prefix: list[int]
    boundary: int | None  # index of the last message TP renders; None = all messages
    source: str           # "messages[i]" or "required_prefix_token_ids"


def choose_prefix(messages: list[Message], required_prefix: list[int] | None) -> PrefixChoice | None:
    """Contract §7.3: explicit ``required_prefix_token_ids`` wins; else the last message carrying ids.

    The boundary is the last assistant message. When it is not the message the prefix comes from
    (an assistant without ids after one with ids, P18) the messages between them would be dropped
    silently, so the request is refused (§7.9 row 5).
    """
    assistants = [i for i, m in enumerate(messages) if m.role == "assistant"]
    last_assistant = assistants[-1] if assistants else None
    if required_prefix is not None:
        # Without any assistant message the explicit prefix covers the whole rendered history
        # (NeMo RL golden case, contract §7.8: a user turn carried as ids).
        return PrefixChoice(list(required_prefix), last_assistant, "required_prefix_token_ids")
    carriers = [i for i, m in enumerate(messages) if m.has_bundle]
    if not carriers:
        return None
    carrier = carriers[-1]
    if last_assistant != carrier:
        raise bad_request(
            f"messages[{last_assistant}] is an assistant message without token ids after messages[{carrier}], "
            "which carries them: the messages between the two cannot be spliced without dropping some "
            "(contract §7.9, P18). Attach prompt_token_ids/generation_token_ids/generation_log_probs to "
            "every model-generated assistant message.", "messages")
    msg = messages[carrier]
    return PrefixChoice([*msg.prompt_token_ids, *msg.generation_token_ids], carrier, f"messages[{carrier}]")


def check_vocab(ids: list[int], vocab_size: int, param: str) -> None:
    if not ids or (min(ids) >= 0 and max(ids) < vocab_size):  # in C: a long rollout's prefix is thousands of ids
        return
    for i, t in enumerate(ids):
        if not 0 <= t < vocab_size:
            raise bad_request(f"{param}[{i}] = {t} is out of vocabulary (valid ids: 0..{vocab_size - 1})", param)


def _norm(text: str) -> str:
    # every whitespace character out: str.split() cuts at exactly the characters regex \s matches (Unicode
    # whitespace, str.isspace), at a quarter of re.sub's cost on a long turn's text (four texts and more a call)
    return "".join(_THINK_TAGS.sub("", text).split())


def _content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def generation_texts(renderer: ChatRenderer, ids: list[int]) -> list[str]:
    """Every text a client may fairly hold for ``ids``, normalised: decoded with and without special tokens
    (vLLM's hermes tool parser asks for them kept), each as is and with every ``<think>`` block removed.

    The block-free forms are what NeMo Gym sends back for a generation whose reasoning is not at the start:
    its reasoning parser takes every block out of the text wherever it sits (contract §3.4, docs/gym-versions.md).
    """
    decodes = (renderer.decode(ids), renderer.tokenizer.decode(ids, skip_special_tokens=False))
    return [_norm(t) for d in decodes for t in (d, _THINK.sub("", d))]


def _named_call_arguments(msg: Message, texts: list[str]) -> bool:
    """The message is a call under a named ``tool_choice``: its ids decode to the call's arguments and nothing else.

    A named choice constrains decoding to the function's parameters (``tool_choice.forced_schema``, as vLLM does),
    so the function's name is nowhere in the generated text; the arguments are, byte for byte. Found by the
    stateful fuzz: such a turn sent back unchanged was refused as edited because its name was looked for there.
    """
    calls = msg.tool_calls or []
    if len(calls) != 1 or not isinstance(calls[0].function.arguments, str):
        return False
    arguments = _norm(calls[0].function.arguments)
    return bool(arguments) and arguments in texts


def check_message_matches_ids(renderer: ChatRenderer, msg: Message, index: int) -> None:
    """Refuse a carried message whose text is not what its ``generation_token_ids`` say (P20, M16).

    A harness that summarises or rewrites an assistant turn but keeps its ids would otherwise have the edit
    silently replaced by the original tokens. Every piece of the message (text with its ``<think>`` blocks
    taken out, reasoning, tool names) must appear in one of the texts the ids decode to. Lenient on purpose
    (whitespace, stray think tags and tool-call arguments are not compared) so that neither a verbatim
    return nor Gym's reasoning strip/re-wrap, wherever the model put its blocks, is ever taken for an edit:
    a false refusal loses the rollout just as drift corrupts it (M28).
    """
    texts = generation_texts(renderer, msg.generation_token_ids)
    pieces = [_THINK.sub("", _content_text(msg.content))]
    pieces += [msg.reasoning_content or msg.reasoning or ""]
    if not _named_call_arguments(msg, texts):
        pieces += [c.function.name for c in msg.tool_calls or []]
    for piece in pieces:
        norm = _norm(piece)  # once, not once per decoded text: a long turn's content is normalised in full
        if norm and not any(norm in text for text in texts):
            raise bad_request(
                f"non-monotonic history: messages[{index}] carries token ids whose text does not contain its "
                f"content {piece[:60]!r}; the message was edited after generation (summarised or rewritten) "
                "and cannot be spliced (contract §7.9, P20)", "messages")


def build_prompt(renderer: ChatRenderer, messages: list[Message], tools: list[Tool] | None,
                 chat_template_kwargs: dict | None, required_prefix: list[int] | None, *, vocab_size: int,
                 stop_ids: Collection[int] = ()) -> list[int]:
    """Served prompt ids for a chat body: T, or splice(M, TP, T) when earlier output is carried (§7.4)."""
    if not renderer.eos_closes_turns:
        raise bad_request(
            f"the tokenizer's eos_token_id ({renderer.eos_id}) is not the token that closes turns in this chat "
            "template, so multi-turn prompts cannot be spliced on-policy (contract §7.9 row 1, P21); fix the "
            "tokenizer's eos_token or the template", "model")
    dicts = [template_message(m) for m in messages]  # what the template sees, built once for both renders
    template = renderer.render(messages, tools, chat_template_kwargs, add_generation_prompt=True, dicts=dicts)
    choice = choose_prefix(messages, required_prefix)
    if choice is None:
        return template  # no prior model output: the template render is served as is
    param = "required_prefix_token_ids" if choice.boundary is None or choice.source.startswith("required") \
        else f"messages.{choice.boundary}.prompt_token_ids"
    check_vocab(choice.model_prefix, vocab_size, param)
    end = len(messages) if choice.boundary is None else choice.boundary + 1
    template_prefix = renderer.render(messages[:end], tools, chat_template_kwargs, add_generation_prompt=False,
                                      dicts=dicts[:end])
    if not choice.source.startswith("required"):
        have, want = expected_prefix_eos_count(choice.model_prefix, template_prefix, renderer.eos_id,
                                               stop_ids=stop_ids)
        if have != want:
            raise bad_request(
                f"non-monotonic history: the ids carried on {choice.source} close {have} turns but the messages "
                f"through it render {want}; turns were added, removed or merged after generation, or the "
                "template drops a message (contract §7.9, P20, D10)", "messages")
        check_message_matches_ids(renderer, messages[choice.boundary], choice.boundary)
    try:
        ids = splice(choice.model_prefix, template_prefix, template, renderer.eos_id, stop_ids=stop_ids)
    except SpliceError as exc:
        raise bad_request(f"cannot splice the prefix from {choice.source}: {exc}", "messages") from exc
    return ids


__all__ = ["ApiError", "PrefixChoice", "build_prompt", "check_vocab", "choose_prefix"]
