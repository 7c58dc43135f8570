"""The message-level ``generation_token_ids`` differ from the ids the engine sampled (and reports elsewhere)."""
from reference_impl.mutants._tamper import ChatTamper

REPRODUCES = "contract §4.2 source agreement (D23, D24)"


class Mutant(ChatTamper):
    def tamper(self, response, body):
        msg = response["choices"][0]["message"]
        ids = msg.get("generation_token_ids")
        if ids:
            # Swap the first two ids (or nudge a lone one): same length, same multiset where possible.
            msg["generation_token_ids"] = ids[1::-1] + ids[2:] if len(ids) > 1 and ids[0] != ids[1] \
                else [(ids[0] + 1) % self.engine.vocab_size, *ids[1:]]
