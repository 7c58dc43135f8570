"""``GET /v1/models`` lists the weights path, while chat only accepts ``--served-model-name``."""
from reference_impl.server.service import Service

REPRODUCES = "contract §2 /v1/models: data[0].id not usable as model (E1, MUST)"


class Mutant(Service):
    def models(self):
        listing = super().models()
        listing["data"][0]["id"] = self.model_path  # what a proxy in front of a renamed server reports
        return listing
