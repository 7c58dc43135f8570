"""What the two drift mutants share: a rollout history that really drifts.

The reference loop carries each call's token bundle on its assistant message, so the server's on-policy
correction keeps every prompt an extension of the previous prompt + generation (no drift to mishandle). These
mutants send the history as text only, as a client without Gym's bundle carrying does: warm-lookup's template
re-renders the tool call differently from what the model emitted (its JSON keys re-sorted), and the next prompt
no longer extends the last one. What the mutants get wrong is what the trainer does with such a rollout; the
reference loop refuses it (counted, written with its reason) and trains on the rest.
"""
from __future__ import annotations

BUNDLE = ("prompt_token_ids", "generation_token_ids", "generation_log_probs")


def agent_without_bundles(loop):
    """``loop.Agent`` whose chat requests drop the token bundles from the history."""

    class TextOnlyAgent(loop.Agent):
        async def _post(self, url, body, cookies=None):
            if url.endswith("/chat/completions"):
                body = {**body, "messages": [{k: v for k, v in m.items() if k not in BUNDLE}
                                             for m in body["messages"]]}
            return await super()._post(url, body, cookies)

    return TextOnlyAgent
