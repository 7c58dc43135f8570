"""Swaps the weights while requests are generating: the refit neither pauses generation nor waits for the swap.

The reference holds new requests back, lets running ones finish, loads the checkpoint, and only then answers the
refit hook, so every response comes from one set of weights and every call sent after the answer is served by
the new ones. This server starts loading the checkpoint into the running engine and answers at once (an
in-flight, fire-and-forget weight update): a response being generated when the swap lands is sampled partly from
the old weights and partly from the new ones, and calls the trainer sends after the hook answered are still
served by the old weights until the swap is done. Only a refit under load shows it (R10 with --refit-url): a
single session never has a call in flight while it refits.

The swap is not awaited so that the defect shows whatever the machine's timing: when the hook waited for the
swap, whether a call straddled it depended on the engine's batch at that instant, and the selftest on vLLM saw
every rescored call served cleanly in one CI run.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

from reference_impl.server.service import Service

REPRODUCES = "a refit that lands mid-generation: responses served by mixed weights (R10 refit under load)"


class Mutant(Service):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._swaps: set[asyncio.Task] = set()  # held so a swap under way is not garbage-collected

    async def load_weights(self, path: str) -> int:
        swap = asyncio.create_task(self._swap(path))  # the defect: not awaited, and no pause around it
        self._swaps.add(swap)
        swap.add_done_callback(self._swaps.discard)
        return self.engine.weight_version + 1

    async def _swap(self, path: str) -> None:
        engine = self.engine
        if hasattr(engine, "llm"):  # vLLM: the RPC runs between engine steps, beside the running requests
            await engine.llm.collective_rpc("reload_weights", kwargs={"weights_path": str(path)})
            await engine.llm.reset_prefix_cache()
        else:  # transformers: copied into the model while another request's forward passes run in their thread
            from safetensors.torch import load_file

            state = {}
            for f in sorted(Path(path).glob("*.safetensors")):
                state.update(load_file(f))
            await asyncio.to_thread(engine.model.load_state_dict, state, strict=False)
        engine.weight_version += 1
