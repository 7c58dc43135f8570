"""Takes the prefix from the *first* assistant message carrying ids instead of the last one.

Later carried turns are then re-rendered from their text, so whatever the model sampled in them that the
template would not reproduce (a non-canonical split, odd tool-call spacing) is re-tokenized away.
"""
from reference_impl.mutants._tamper import splice_through
from reference_impl.server.correction import check_vocab
from reference_impl.server.service import Service

REPRODUCES = "contract §7.3 prefix source rule (M6)"


class Mutant(Service):
    def plan_prompt(self, req):
        carriers = [i for i, m in enumerate(req.messages) if m.has_bundle]
        if req.required_prefix_token_ids is not None or len(carriers) < 2:
            return super().plan_prompt(req)
        first = req.messages[carriers[0]]
        prefix = [*first.prompt_token_ids, *first.generation_token_ids]
        check_vocab(prefix, self.engine.vocab_size, "messages")
        return splice_through(self, req, carriers[0], prefix)
