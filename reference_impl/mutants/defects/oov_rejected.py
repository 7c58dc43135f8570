"""Rejects prompt ids the model can emit but the tokenizer cannot decode (>= ``len(tokenizer)``, < model vocab).

vLLM's input processor checked prompt ids against the tokenizer's ``max_token_id`` instead of the model's
vocabulary (fixed in vllm-project/vllm#22471): once a policy puts mass on the padded embedding rows, its
own sampled id comes back in the next turn's prompt and the call fails (NVIDIA-NeMo/RL#237).
"""
from reference_impl.server.protocol import bad_request
from reference_impl.server.service import Service

REPRODUCES = "NVIDIA-NeMo/RL#237 (ids in the padded vocabulary)"


class Mutant(Service):
    async def generate(self, prompt_ids, params):
        max_token_id = len(self.tokenizer) - 1
        if max(prompt_ids, default=0) > max_token_id:
            raise bad_request(f"Token id {max(prompt_ids)} is out of vocabulary", "messages")
        return await super().generate(prompt_ids, params)
