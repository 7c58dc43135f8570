"""Serves the history with reasoning stripped from earlier turns (a Qwen3-style template, no correction)."""
from reference_impl.server.service import Service

REPRODUCES = "D08, D09 (P05)"
FIXTURE = "tiny-chatml-drift-strip-reasoning"


class Mutant(Service):
    def _plan(self, req):
        return self.renderer.render(req.messages, req.tools, req.chat_template_kwargs, add_generation_prompt=True)
