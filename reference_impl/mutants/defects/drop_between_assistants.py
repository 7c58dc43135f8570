"""Takes the prefix from the last message with ids but the boundary from the last assistant message.

When a harness appends an assistant message without ids (a synthetic apology or summary) after one
with ids, the EOS count covers the newer assistant, the cut lands after it, and every message between
the two assistants silently disappears from the served prompt (contract §7.9 row 5). Every other
request is planned by the reference.
"""
from reference_impl.mutants._tamper import carried_prefix, splice_through
from reference_impl.server.service import Service

REPRODUCES = "D13 (P18)"


class Mutant(Service):
    def plan_prompt(self, req):
        carriers = [i for i, m in enumerate(req.messages) if m.has_bundle]
        boundary = max((i for i, m in enumerate(req.messages) if m.role == "assistant"), default=None)
        if req.required_prefix_token_ids is not None or not carriers or carriers[-1] == boundary:
            return super().plan_prompt(req)
        return splice_through(self, req, boundary, carried_prefix(self, req))
