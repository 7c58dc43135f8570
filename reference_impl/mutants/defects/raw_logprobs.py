"""Samples from the processed distribution but reports log probs (and top alternatives) of the raw one.

vLLM's default ``logprobs_mode: raw_logprobs`` does this (D28): temperature and top-p are ignored in
what is reported, so the trainer sees a systematic, temperature-dependent gap between its log probs and
the rollout's.
"""
from reference_impl.server.engines.base import GenerateParams
from reference_impl.server.protocol import ApiError
from reference_impl.server.service import Service

REPRODUCES = "D28 (P15, E20)"


class Mutant(Service):
    async def generate(self, prompt_ids, params):
        result = await super().generate(prompt_ids, params)
        if not result.token_ids or params.temperature == 0 or (params.temperature == 1.0 and params.top_p == 1.0):
            return result  # greedy, or the processed distribution is the raw one
        rescore = GenerateParams(max_tokens=1, temperature=1.0, top_p=1.0, prompt_logprobs=params.top_logprobs)
        try:
            raw = await super().generate([*prompt_ids, *result.token_ids], rescore)
        except ApiError:  # no room for the rescoring pass: report what was sampled
            return result
        n = len(prompt_ids)
        result.logprobs = list(raw.prompt_logprobs[n:])
        if result.top_logprobs is not None:
            result.top_logprobs = list(raw.prompt_top_logprobs[n:])
        return result
