"""With ``logprobs: true, top_logprobs: null`` returns no logprobs and no ids, and no error (vLLM's rule)."""
from reference_impl.server.service import Service, json_value

REPRODUCES = "Gym top_logprobs=0 pin rationale (P14)"


class Mutant(Service):
    async def chat(self, body):
        body = json_value(body)
        if isinstance(body, dict) and body.get("logprobs") and body.get("top_logprobs") is None:
            # vLLM computes "logprobs = top_logprobs if logprobs else None": null means none at all.
            body = {**body, "logprobs": False, "return_tokens_as_token_ids": False, "return_token_ids": False}
            body.pop("top_logprobs", None)
        return await super().chat(body)
