"""Treats empty carried id lists (or ``required_prefix_token_ids: []``) as "no prefix", silently.

The un-spliced template render is served and returned as if it were corrected (NVIDIA-NeMo/RL#3763
review: ``[]`` passes an ``is None`` guard).
"""
from reference_impl.server.protocol import TOKEN_FIELDS
from reference_impl.server.service import Service

REPRODUCES = "D13, D14 (P19)"


def _forget_empty(body):
    if not isinstance(body, dict):
        return body
    body = dict(body)
    if body.get("required_prefix_token_ids") == []:
        del body["required_prefix_token_ids"]
    messages = []
    for m in body.get("messages") or []:
        if isinstance(m, dict) and any(m.get(f) == [] for f in TOKEN_FIELDS):
            m = {k: v for k, v in m.items() if k not in TOKEN_FIELDS}
        messages.append(m)
    if "messages" in body:
        body["messages"] = messages
    return body


class Mutant(Service):
    async def chat(self, body):
        return await super().chat(_forget_empty(body))

    def tokenize(self, body):
        return super().tokenize(_forget_empty(body))
