"""transformers engine: exact, slow, one request at a time. For unit tests and machines without vLLM.

A forced tool choice is decoded under the tool's JSON schema with xgrammar, the library vLLM uses.

Logprobs follow vLLM's ``processed_logprobs`` (contract §8.3): log-softmax of the logits after
temperature and top-p, i.e. the distribution the token was actually sampled from. Prompt logprobs
are of the unprocessed distribution, as vLLM's are.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import torch

from .base import Engine, EngineError, GenerateParams, GenerateResult, generation_stop_ids
from .checkpoint import check_against, checkpoint_files, tensor_shapes


def processed_logprobs(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """log softmax(logits / T) restricted to the top-p nucleus (outside it: -inf), as vLLM samples."""
    logits = logits.float()
    if temperature > 0:
        logits = logits / temperature
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # keep a token while the mass strictly before it is < top_p (the first token always survives)
        drop = (torch.cumsum(probs, dim=-1) - probs) >= top_p
        sorted_logits[drop] = float("-inf")
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return torch.log_softmax(logits, dim=-1)


def _top(lp: torch.Tensor, k: int) -> list[tuple[int, float]]:
    if k <= 0:
        return []
    vals, idx = torch.topk(lp, k)
    return [(int(i), float(v)) for i, v in zip(idx, vals)]


class HFEngine(Engine):
    name = "hf"

    def __init__(self, model_dir: str | Path, *, eos_token_id: int | None, max_model_len: int | None = None,
                 tokenizer=None):
        from transformers import AutoModelForCausalLM

        self.model_dir = Path(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32)
        self.model.eval()
        cfg = self.model.config
        self.vocab_size = int(cfg.vocab_size)
        self.max_model_len = int(max_model_len or getattr(cfg, "max_position_embeddings", 2048))
        self.stop_ids = generation_stop_ids(self.model_dir, eos_token_id)
        self._lock = asyncio.Lock()  # torch forward passes are not run concurrently
        # the server's tokenizer, for the grammar of a forced tool choice (weights may live apart from it)
        self.tokenizer = tokenizer
        self._compiler = None  # xgrammar's, built on the first forced tool choice

    async def generate(self, prompt_ids: list[int], params: GenerateParams) -> GenerateResult:
        async with self._lock:
            return await asyncio.to_thread(self._generate, prompt_ids, params)

    def _matcher(self, schema: dict):
        """Constrained decoding for a forced tool choice, with the grammar library vLLM uses (xgrammar), JSON
        whitespace fixed as the vllm engine configures it. Unlike vLLM with a reasoning parser, the constraint
        starts at the first generated token (callers that want reasoning first send enable_thinking: false)."""
        try:
            import xgrammar as xgr
        except ImportError as exc:
            raise EngineError("tool_choice 'required' or a named function needs constrained decoding (xgrammar), "
                              f"which is not importable: {exc}", status=400, param="tool_choice") from exc
        if self._compiler is None:
            tokenizer = self.tokenizer
            if tokenizer is None:
                from transformers import AutoTokenizer
                tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
            info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=self.vocab_size,
                                                      stop_token_ids=sorted(self.stop_ids))
            self._compiler = xgr.GrammarCompiler(info)
        try:
            compiled = self._compiler.compile_json_schema(json.dumps(schema), any_whitespace=False)
        except Exception as exc:  # noqa: BLE001 - an unusable schema is the caller's error
            raise EngineError(f"the tool's JSON schema cannot be compiled: {exc}".splitlines()[0], status=400,
                              param="tools") from exc
        return xgr, xgr.GrammarMatcher(compiled), xgr.allocate_token_bitmask(1, self.vocab_size)

    @torch.no_grad()
    def _generate(self, prompt_ids: list[int], p: GenerateParams) -> GenerateResult:
        gen = torch.Generator()
        gen.manual_seed(p.seed if p.seed is not None else int(torch.randint(0, 2**62, ()).item()))
        out = self.model(input_ids=torch.tensor([prompt_ids]), use_cache=True)
        result = GenerateResult([], [], "length", top_logprobs=[] if p.top_logprobs else None)
        if p.prompt_logprobs is not None:
            raw = torch.log_softmax(out.logits[0, :-1].float(), dim=-1)
            picked = raw.gather(-1, torch.tensor(prompt_ids[1:]).unsqueeze(-1)).squeeze(-1)
            result.prompt_logprobs = [None] + [float(x) for x in picked]
            result.prompt_top_logprobs = [None] + [_top(row, p.prompt_logprobs) for row in raw]
        past, logits = out.past_key_values, out.logits[0, -1]
        grammar = self._matcher(p.json_schema) if p.json_schema is not None else None
        for _ in range(p.max_tokens):
            if grammar is not None:  # tokens the grammar forbids get -inf before the sampler sees them
                xgr, matcher, bitmask = grammar
                matcher.fill_next_token_bitmask(bitmask)
                logits = logits.float().unsqueeze(0).clone()
                xgr.apply_token_bitmask_inplace(logits, bitmask)
                logits = logits[0]
            lp = processed_logprobs(logits, p.temperature, p.top_p)
            if p.temperature == 0:
                tok = int(torch.argmax(lp))
            else:
                tok = int(torch.multinomial(lp.exp(), 1, generator=gen))
            result.token_ids.append(tok)
            result.logprobs.append(float(lp[tok]))
            if grammar is not None:
                grammar[1].accept_token(tok)
            if result.top_logprobs is not None:
                result.top_logprobs.append(_top(lp, p.top_logprobs))
            if tok in self.stop_ids:
                result.finish_reason = "stop"
                break
            out = self.model(input_ids=torch.tensor([[tok]]), past_key_values=past, use_cache=True)
            past, logits = out.past_key_values, out.logits[0, -1]
        return result

    async def reload_weights(self, path: str) -> int:
        """All or nothing: the checkpoint is read and checked against the model before any tensor is copied, so a
        refused reload leaves the served weights (and ``weight_version``) as they were. Found by the stateful fuzz:
        an unknown tensor was refused only after the known ones had been loaded (new weights under the old
        version), and an unreadable file or a tensor of the wrong shape failed with HTTP 500 halfway through."""
        from safetensors.torch import load_file

        shapes = tensor_shapes(path)  # a truncated or garbage file: refused before anything is read or copied
        async with self._lock:
            check_against(shapes, {k: tuple(v.shape) for k, v in self.model.state_dict().items()})
            state = {}
            for f in checkpoint_files(path):
                state.update(load_file(f))
            self.model.load_state_dict(state, strict=False)
            self.weight_version += 1
        return self.weight_version

