"""Re-templates and re-tokenizes the whole history every call, ignoring carried ids (stock behaviour)."""
from reference_impl.mutants._tamper import template_render
from reference_impl.server.service import Service

REPRODUCES = "D01, D02, D03 (P01, P02)"


class Mutant(Service):
    def plan_prompt(self, req):
        return template_render(self, req)
