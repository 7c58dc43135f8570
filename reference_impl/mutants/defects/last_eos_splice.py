"""The second NeMo RL correction: cut the template at the last EOS inside the template-prefix length.

Generation 2 of contract §7.5 (NeMo RL PR #1337). Right while the template never rewrites history;
with a reasoning-stripping template the stripped render is shorter, a later user turn's EOS falls
inside ``len(TP)``, and the new user turn is silently dropped (§7.6 c).
"""
from reference_impl.mutants._tamper import carried_prefix, template_render
from reference_impl.server.protocol import bad_request
from reference_impl.server.service import Service

REPRODUCES = "contract §7.5 gen 2, §7.6(c) (P05)"
FIXTURE = "tiny-chatml-drift-strip-reasoning"


class Mutant(Service):
    def plan_prompt(self, req):
        template = template_render(self, req)
        prefix = carried_prefix(self, req)
        if not prefix:
            return template
        assistants = [i for i, m in enumerate(req.messages) if m.role == "assistant"]
        through = req.messages[:assistants[-1] + 1] if assistants else req.messages
        template_prefix = self.renderer.render(through, req.tools, req.chat_template_kwargs, add_generation_prompt=False)
        eos = self.renderer.eos_id
        if len(template) <= len(template_prefix):
            raise bad_request("possibly non-monotonically increasing trajectory", "messages")
        cut = max((i for i, t in enumerate(template[:len(template_prefix)]) if t == eos), default=None)
        if cut is None:
            raise bad_request("no EOS token in the template prefix", "messages")
        keep = prefix[:-1] if prefix[-1] == eos else prefix
        return [*keep, *template[cut:]]
