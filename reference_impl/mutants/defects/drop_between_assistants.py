"""Takes the prefix from the last message with ids but the boundary from the last assistant message.

When a harness appends an assistant message without ids (a synthetic apology or summary) after one
with ids, the EOS count covers the newer assistant, the cut lands after it, and every message between
the two assistants silently disappears from the served prompt (contract §7.9 row 5). Every other
request is planned by the reference.
"""
from reference_impl.mutants._tamper import carried_prefix, template_render
from reference_impl.server.service import Service
from reference_impl.server.protocol import bad_request
from reference_impl.server.splice import SpliceError, splice

REPRODUCES = "D13 (P18)"


class Mutant(Service):
    def _plan(self, req):
        carriers = [i for i, m in enumerate(req.messages) if m.has_bundle]
        boundary = max((i for i, m in enumerate(req.messages) if m.role == "assistant"), default=None)
        if req.required_prefix_token_ids is not None or not carriers or carriers[-1] == boundary:
            return super()._plan(req)
        template = template_render(self, req)
        template_prefix = self.renderer.render(req.messages[:boundary + 1], req.tools, req.chat_template_kwargs,
                                               add_generation_prompt=False)
        try:
            return splice(carried_prefix(self, req), template_prefix, template, self.renderer.eos_id,
                          stop_ids=self.engine.stop_ids)
        except SpliceError as exc:
            raise bad_request(f"cannot splice: {exc}", "messages") from exc
