"""The engine gate (pure asyncio): seeded requests share a token budget, never run beside unseeded ones or a reload."""
from __future__ import annotations

import asyncio

from reference_impl.server.engines.base import Gate


def test_seeded_requests_run_together_within_the_budget_and_alone_from_the_rest():
    async def run():
        gate, live, peak, log = Gate(), {"seeded": 0, "shared": 0, "tokens": 0}, {"seeded": 0, "tokens": 0}, []
        within = []

        async def seeded(tokens):
            async with gate.seeded(tokens, budget=100):
                live["seeded"] += 1
                live["tokens"] += tokens
                peak["seeded"] = max(peak["seeded"], live["seeded"])
                peak["tokens"] = max(peak["tokens"], live["tokens"])
                log.append(("seeded", live["shared"]))
                within.append(live["tokens"] <= 100 or live["seeded"] == 1)
                await asyncio.sleep(0.01)
                live["seeded"] -= 1
                live["tokens"] -= tokens

        async def shared():
            async with gate.shared():
                live["shared"] += 1
                log.append(("shared", live["seeded"]))
                await asyncio.sleep(0.01)
                live["shared"] -= 1

        async def reload():
            async with gate.exclusive():
                log.append(("reload", live["seeded"] + live["shared"]))
                await asyncio.sleep(0.01)

        await asyncio.gather(*[seeded(30) for _ in range(10)], *[shared() for _ in range(5)], reload(),
                             seeded(250))  # larger than the budget: runs, alone
        return peak, log, within

    peak, log, within = asyncio.run(run())
    assert peak["seeded"] == 3  # three requests of 30 tokens fit a budget of 100, a fourth never joins them
    assert all(within)  # over the budget only alone (the oversized request)
    assert all(others == 0 for kind, others in log), log  # never seeded beside shared, nor a reload beside anything
