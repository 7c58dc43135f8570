"""Answers 400 to any message carrying ``prompt_token_ids``/``generation_token_ids``/``generation_log_probs``.

A server whose request model forbids extra fields (pydantic ``extra="forbid"``, the OpenAI message
schema) refuses Gym's carried token bundle outright, so no multi-turn rollout gets past turn one
(contract §3.2 note).
"""
from reference_impl.server.protocol import TOKEN_FIELDS, bad_request
from reference_impl.server.service import Service, json_value

REPRODUCES = "contract §3.2 note (E2)"


class Mutant(Service):
    async def chat(self, body):
        body = json_value(body)
        messages = body.get("messages") if isinstance(body, dict) else None
        for i, m in enumerate(messages if isinstance(messages, list) else []):
            extra = [f for f in TOKEN_FIELDS if isinstance(m, dict) and f in m]
            if extra:
                field = f"messages.{i}.{extra[0]}"
                raise bad_request(f"{field}: Extra inputs are not permitted", field)
        return await super().chat(body)
