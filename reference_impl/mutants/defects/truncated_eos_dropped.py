"""After a turn truncated by ``max_tokens``, serves M followed by the template after its end-of-turn token.

An EOS-count splice (contract §7.4) that always skips the template's N-th EOS, as if the carried
generation had ended on one. When it did not (cut by ``max_tokens``), the truncated turn is never
closed: the next turn's tokens follow the model's last sampled token directly (§7.6 b). Like the
NeMo RL splices it checks no turn counts, so later turns splice onto the unclosed prompt without error.
"""
from reference_impl.server.correction import check_vocab, choose_prefix
from reference_impl.server.protocol import bad_request
from reference_impl.server.service import Service
from reference_impl.server.splice import SpliceError, splice

REPRODUCES = "contract §7.6(b) (P04, M11)"


class Mutant(Service):
    def plan_prompt(self, req):
        choice = choose_prefix(req.messages, req.required_prefix_token_ids)
        if choice is None:
            return super().plan_prompt(req)
        m, eos, render = choice.model_prefix, self.renderer.eos_id, self.renderer.render
        check_vocab(m, self.engine.vocab_size, "messages")
        through = req.messages if choice.boundary is None else req.messages[:choice.boundary + 1]
        try:
            ids = splice(m, render(through, req.tools, req.chat_template_kwargs, add_generation_prompt=False),
                         render(req.messages, req.tools, req.chat_template_kwargs, add_generation_prompt=True),
                         eos, stop_ids=self.engine.stop_ids)
        except SpliceError as exc:
            raise bad_request(f"cannot splice: {exc}", "messages") from exc
        if m[-1] != eos and m[-1] not in self.engine.stop_ids and ids[len(m):len(m) + 1] == [eos]:
            del ids[len(m)]  # the defect: the truncated turn's closing EOS is skipped like a sampled one
        return ids
