"""``/tokenize`` answers ``{"input_ids": [...]}`` instead of ``{"tokens": [...], "count": n, "max_model_len": m}``."""
from reference_impl.server.service import Service

REPRODUCES = "contract §4.3 /tokenize shape (E9)"


class Mutant(Service):
    def tokenize(self, body):
        return {"input_ids": super().tokenize(body)["tokens"]}
