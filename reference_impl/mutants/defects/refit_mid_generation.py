"""Swaps the weights while requests are generating: the refit neither pauses generation nor waits for the swap.

The reference holds new requests back, lets running ones finish, loads the checkpoint, and only then answers the
refit hook, so every response comes from one set of weights and every call sent after the answer is served by
the new ones. This server starts loading the checkpoint into the running engine and answers at once (an
in-flight, fire-and-forget weight update): a response being generated when the swap lands is sampled partly from
the old weights and partly from the new ones, and calls the trainer sends after the hook answered are still
served by the old weights until the swap is done. Only a refit under load shows it (R10 with --refit-url): a
single session never has a call in flight while it refits.

Like an asynchronous weight-update queue, it applies the staged checkpoint a moment after acknowledging it
(``APPLY_LAG_S``, about what broadcasting a real model's weights takes). Without the lag the defect showed only by
the machine's timing: when the hook waited for the swap, whether a call straddled it depended on the engine's
batch at that instant; when it answered at once, a busy server's answer reached the client after the swap had
landed, no rescored call was stale, and the one in 64 that straddled it was not always sampled (CI saw both pass).
With the lag, every call the load sends in the second after the answer is served by the old weights.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

from reference_impl.server.service import Service

REPRODUCES = "a refit that lands mid-generation: responses served by mixed weights (R10 refit under load)"
APPLY_LAG_S = 1.5  # the staged weights land this long after the hook has answered


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
        await asyncio.sleep(APPLY_LAG_S)  # staged, applied later, while the engine keeps generating
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
