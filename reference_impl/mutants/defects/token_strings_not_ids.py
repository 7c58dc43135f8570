"""Logprob ``content[i].token`` strings are the decoded text even when ``return_tokens_as_token_ids`` is set."""
import re

from reference_impl.mutants._tamper import ChatTamper

REPRODUCES = "D24 (P13, E19)"
_TOKEN_ID = re.compile(r"token_id:(-?\d+)")


class Mutant(ChatTamper):
    def tamper(self, response, body):
        content = (response["choices"][0].get("logprobs") or {}).get("content") or []
        for entry in [e for top in content for e in [top, *(top.get("top_logprobs") or [])]]:
            match = _TOKEN_ID.fullmatch(entry["token"])
            if match:
                entry["token"] = self.tokens.text(int(match.group(1)))[0]
