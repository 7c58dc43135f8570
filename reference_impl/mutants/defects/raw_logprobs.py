"""Samples at the requested temperature but reports log probs of the untempered distribution.

vLLM's default ``logprobs_mode: raw_logprobs`` does this (D28): the trainer then sees a systematic,
temperature-dependent gap between its log probs and the rollout's.
"""
from reference_impl.server.engines.base import GenerateParams
from reference_impl.server.service import Service

REPRODUCES = "D28 (P15)"


class Mutant(Service):
    async def _generate(self, prompt_ids, params):
        result = await super()._generate(prompt_ids, params)
        if result.token_ids and params.temperature not in (0.0, 1.0):
            rescore = GenerateParams(max_tokens=1, temperature=1.0, top_p=1.0, prompt_logprobs=0)
            raw = await super()._generate([*prompt_ids, *result.token_ids], rescore)
            result.logprobs = list(raw.prompt_logprobs[len(prompt_ids):])
        return result
