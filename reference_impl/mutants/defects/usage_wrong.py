"""Counts the end-of-turn token out of ``usage.completion_tokens`` (and the BOS out of ``prompt_tokens``)."""
from reference_impl.mutants._tamper import ChatTamper

REPRODUCES = "contract §6.1 usage (E6)"


class Mutant(ChatTamper):
    def tamper(self, response, body):
        response["usage"]["prompt_tokens"] -= 1
        response["usage"]["completion_tokens"] = max(0, response["usage"]["completion_tokens"] - 1)
        response["usage"]["total_tokens"] -= 2
