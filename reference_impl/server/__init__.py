"""The reference OpenAI-compatible generation server with on-policy corrections (issue 3).

    gym-conformance serve --model DIR [--engine vllm|hf|remote] [--reasoning-parser qwen3] [--tool-parser hermes]

Layout: ``splice`` (contract §7.4), ``correction`` (prefix rule §7.3 and the §7.9 refusals),
``rendering`` (the tokenizer's chat template), ``sampling`` (pin §8.5, clamp §8.4), ``parsing``
(vLLM's reasoning/tool parsers), ``response`` (bundle §4, §8.1), ``service`` (request handling,
engine-agnostic), ``engines`` (vllm, hf, remote), ``app`` (HTTP), ``cli``.
"""
