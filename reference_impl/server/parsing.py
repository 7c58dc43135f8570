"""Reasoning and tool-call extraction with vLLM's own parser classes (``ParserManager``), not ours.

The parsers see exactly what stock vLLM's non-streaming chat path gives them: the decoded text
(special tokens skipped), the generated ids and the served prompt ids, plus a vLLM
``ChatCompletionRequest`` carrying tools, tool_choice and chat_template_kwargs (e.g. the Qwen3
parser reads ``enable_thinking`` from it).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from .protocol import ChatRequest, bad_request
from .tool_choice import forced_calls


@dataclass
class ParsedOutput:
    content: str | None
    reasoning: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


class OutputParser:
    """Built once per server from ``--reasoning-parser`` / ``--tool-parser``; one vLLM parser per request."""

    def __init__(self, tokenizer, *, reasoning_parser: str | None, tool_parser: str | None, model_name: str):
        self.tokenizer = tokenizer
        self.reasoning_parser, self.tool_parser = reasoning_parser, tool_parser
        self.parser_cls = None
        if reasoning_parser or tool_parser:
            from vllm.parser import ParserManager
            from vllm.tokenizers.hf import get_cached_tokenizer

            # vLLM's own caching proxy, as its server uses: every parser instance reads the vocabulary,
            # and building a 152k-entry dict per request cost ~150 ms on these CPUs.
            self.tokenizer = tokenizer = get_cached_tokenizer(tokenizer)

            self.parser_cls = ParserManager.get_parser(
                tool_parser_name=tool_parser, reasoning_parser_name=reasoning_parser,
                enable_auto_tools=tool_parser is not None, model_name=model_name, tokenizer=tokenizer)

    def prepare(self, req: ChatRequest):
        """vLLM's request object for the parsers, built (and so validated by vLLM) before generating."""
        if self.parser_cls is None:
            return None
        from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

        tools = [t.model_dump(exclude_none=True) for t in req.tools] if req.tools else None
        try:
            return ChatCompletionRequest(
                model=req.model or "", messages=[], tools=tools,
                tool_choice=req.tool_choice if tools else "none", chat_template_kwargs=req.chat_template_kwargs,
                include_reasoning=req.include_reasoning, parallel_tool_calls=req.parallel_tool_calls
                if req.parallel_tool_calls is not None else True)
        except Exception as exc:  # vLLM's own checks on tools/tool_choice (e.g. an unknown named function)
            raise bad_request(f"tools/tool_choice rejected: {exc}".splitlines()[0], "tool_choice") from exc

    def parse(self, text: str, gen_ids: list[int], prompt_ids: list[int], req: ChatRequest,
              vreq=None, *, forced: bool = False) -> ParsedOutput:
        """``forced``: decoding was constrained to a tool-call schema; the JSON becomes ``tool_calls`` (not the
        tool parser's job, as in vLLM)."""
        if self.parser_cls is None:
            parsed = ParsedOutput(content=text)
        else:
            parsed = self._parse(text, gen_ids, prompt_ids, req, vreq, auto_tools=not forced)
        if forced:
            calls = forced_calls(parsed.content, req)
            if calls is not None:
                parsed.content, parsed.tool_calls = None, calls
        return parsed

    def _parse(self, text: str, gen_ids: list[int], prompt_ids: list[int], req: ChatRequest, vreq,
               *, auto_tools: bool) -> ParsedOutput:
        vreq = vreq if vreq is not None else self.prepare(req)
        auto_tools = auto_tools and bool(self.tool_parser and req.tools and req.tool_choice != "none")
        parser = self.parser_cls(self.tokenizer, vreq.tools, chat_template_kwargs=req.chat_template_kwargs or {})
        parser.set_prompt_token_ids(prompt_ids)
        reasoning, content, calls = parser.parse(text, vreq, enable_auto_tools=auto_tools,
                                                 model_output_token_ids=gen_ids)
        if not self.reasoning_parser:
            reasoning = None
        tool_calls = [{"id": getattr(c, "id", None) or f"chatcmpl-tool-{uuid.uuid4().hex[:16]}",
                       "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                      for c in (calls or [])] if auto_tools else []
        if req.parallel_tool_calls is False:
            tool_calls = tool_calls[:1]
        return ParsedOutput(content=content, reasoning=reasoning, tool_calls=tool_calls)
