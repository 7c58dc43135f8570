"""Keeps the sampled end-of-turn token and also the template's: the next prompt closes the turn twice."""
from reference_impl.server.correction import build_prompt
from reference_impl.server.service import Service

REPRODUCES = "D19 (P22)"


class Mutant(Service):
    def plan_prompt(self, req):
        prompt = build_prompt(self.renderer, req.messages, req.tools, req.chat_template_kwargs,
                              req.required_prefix_token_ids, vocab_size=self.engine.vocab_size,
                              stop_ids=self.engine.stop_ids)
        carriers = [m for m in req.messages if m.has_bundle]
        if not carriers:
            return prompt
        prefix = [*carriers[-1].prompt_token_ids, *carriers[-1].generation_token_ids]
        if prefix and prefix[-1] == self.renderer.eos_id and prompt[:len(prefix)] == prefix:
            # include_stop_str_in_output-style: the template's own end token follows the sampled one.
            return [*prefix, self.renderer.eos_id, *prompt[len(prefix):]]
        return prompt
