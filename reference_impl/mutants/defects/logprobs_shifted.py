"""Reports each token's log prob one position late (an off-by-one in the logprob gather)."""
from reference_impl.mutants._tamper import ChatTamper

REPRODUCES = "D29 logprob provenance (P16)"


class Mutant(ChatTamper):
    def tamper(self, response, body):
        choice = response["choices"][0]
        lps = choice["message"].get("generation_log_probs")
        if lps:
            shifted = [lps[0], *lps[:-1]]
            choice["message"]["generation_log_probs"] = shifted
            for entry, lp in zip((choice.get("logprobs") or {}).get("content") or [], shifted):
                entry["logprob"] = lp
