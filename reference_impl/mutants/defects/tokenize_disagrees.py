"""``/tokenize`` renders the template without the on-policy correction the chat path applies."""
from reference_impl.mutants._tamper import template_render
from reference_impl.server.protocol import TokenizeRequest
from reference_impl.server.service import Service, validate

REPRODUCES = "contract §4.3, §8.6 (P17)"


class Mutant(Service):
    def tokenize(self, body):
        req = validate(TokenizeRequest, body)
        self._check_model(req.model)
        if req.messages is None:
            return super().tokenize(body)
        tokens = template_render(self, req)
        return {"count": len(tokens), "max_model_len": self.engine.max_model_len, "tokens": tokens,
                "token_strs": None}
