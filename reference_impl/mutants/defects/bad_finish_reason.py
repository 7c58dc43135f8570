"""Reports ``finish_reason: "eos"`` instead of ``"stop"`` when generation ends on the end-of-turn token."""
from reference_impl.mutants._tamper import ChatTamper

REPRODUCES = "contract §8.1 finish_reason (E15)"


class Mutant(ChatTamper):
    def tamper(self, response, body):
        choice = response["choices"][0]
        if choice["finish_reason"] == "stop":
            choice["finish_reason"] = "eos"
