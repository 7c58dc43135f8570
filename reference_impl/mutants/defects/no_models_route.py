"""``GET /v1/models`` answers 404: the server lists no model (Gym's readiness probe still passes)."""
from reference_impl.server.protocol import ApiError
from reference_impl.server.service import Service

REPRODUCES = "contract §2 /v1/models (E1, SHOULD)"


class Mutant(Service):
    def models(self):
        raise ApiError(404, "GET /v1/models: Not Found", type="NotFoundError")
