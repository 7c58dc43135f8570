"""Splices the carried ids even when the harness edited that assistant message after generation.

A summariser that rewrites an earlier turn but keeps its ids gets its edit silently replaced by the
original tokens: the served prompt claims continuity while the environment's history is gone (the
EOS-count splice alone never looks at message text).
"""
from reference_impl.mutants._tamper import carried_prefix, splice_through
from reference_impl.server.service import Service

REPRODUCES = "D10/D11 non-monotonic history (P20, M16)"


class Mutant(Service):
    def plan_prompt(self, req):
        carriers = [i for i, m in enumerate(req.messages) if m.has_bundle]
        if req.required_prefix_token_ids is not None or not carriers:
            return super().plan_prompt(req)
        return splice_through(self, req, carriers[-1], carried_prefix(self, req))
