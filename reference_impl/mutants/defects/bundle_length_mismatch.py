"""Returns one log prob fewer than generated ids in the message-level bundle."""
from reference_impl.mutants._tamper import ChatTamper

REPRODUCES = "contract §4.2 length rule (I2)"


class Mutant(ChatTamper):
    def tamper(self, response, body):
        msg = response["choices"][0]["message"]
        if msg.get("generation_log_probs"):
            msg["generation_log_probs"] = msg["generation_log_probs"][:-1]
