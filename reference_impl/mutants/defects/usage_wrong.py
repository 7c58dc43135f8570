"""Under-counts ``usage``: one token short in ``prompt_tokens`` and in ``completion_tokens`` (the end token)."""
from reference_impl.mutants._tamper import ChatTamper

REPRODUCES = "contract §6.1 usage (E6)"


class Mutant(ChatTamper):
    def tamper(self, response, body):
        usage = response["usage"]
        usage["prompt_tokens"] -= 1
        usage["completion_tokens"] = max(0, usage["completion_tokens"] - 1)
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
