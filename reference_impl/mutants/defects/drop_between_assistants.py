"""Takes the prefix from the last message with ids but the boundary from the last assistant message.

When a harness appends an assistant message without ids (a synthetic apology or summary) after one
with ids, the EOS count covers the newer assistant, the cut lands after it, and every message between
the two assistants silently disappears from the served prompt (contract §7.9 row 5).
"""
from reference_impl.server.service import Service
from reference_impl.server.splice import splice

REPRODUCES = "D13 (P18)"


class Mutant(Service):
    def _plan(self, req):
        template = self.renderer.render(req.messages, req.tools, req.chat_template_kwargs, add_generation_prompt=True)
        carriers = [m for m in req.messages if m.has_bundle]
        if not carriers:
            return template
        prefix = [*carriers[-1].prompt_token_ids, *carriers[-1].generation_token_ids]
        boundary = max(i for i, m in enumerate(req.messages) if m.role == "assistant")
        template_prefix = self.renderer.render(req.messages[:boundary + 1], req.tools, req.chat_template_kwargs,
                                               add_generation_prompt=False)
        return splice(prefix, template_prefix, template, self.renderer.eos_id)
