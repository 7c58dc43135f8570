"""Takes an empty carried prefix (``[]`` lists, ``required_prefix_token_ids: []``) as "no prefix", silently.

``[]`` passes an ``is None`` guard (NVIDIA-NeMo/RL#3763 review): an explicit empty
``required_prefix_token_ids``, or empty lists on the latest message carrying ids, win the prefix rule
(contract §7.3) with M = [], so the un-spliced template render is served -- and the real ids carried
by earlier turns are ignored without a word. The reference refuses both with a 400 (P19).
"""
from reference_impl.server.protocol import TOKEN_FIELDS
from reference_impl.server.service import Service, json_value

REPRODUCES = "D13, D14 (P19)"


def _empty_wins(body):
    """The body without any token ids when an empty prefix wins the prefix rule; else unchanged."""
    body = json_value(body)
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return body
    messages = body["messages"]
    carriers = [m for m in messages if isinstance(m, dict) and any(m.get(f) is not None for f in TOKEN_FIELDS)]
    if body.get("required_prefix_token_ids") == [] or (carriers and carriers[-1].get("prompt_token_ids") == []):
        return {**{k: v for k, v in body.items() if k != "required_prefix_token_ids"},
                "messages": [{k: v for k, v in m.items() if k not in TOKEN_FIELDS} if isinstance(m, dict) else m
                             for m in messages]}
    return body


class Mutant(Service):
    async def chat(self, body):
        return await super().chat(_empty_wins(body))

    def tokenize(self, body):
        return super().tokenize(_empty_wins(body))
