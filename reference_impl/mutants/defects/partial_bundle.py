"""Returns prompt and generation ids on the message but drops ``generation_log_probs``."""
from reference_impl.mutants._tamper import ChatTamper

REPRODUCES = "contract §4.2 atomic rule (P13)"


class Mutant(ChatTamper):
    def tamper(self, response, body):
        response["choices"][0]["message"].pop("generation_log_probs", None)
