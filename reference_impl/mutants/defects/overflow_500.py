"""Reports a context-length overflow as HTTP 500: Gym retries it, then the rollout crashes."""
from reference_impl.server.protocol import ApiError
from reference_impl.server.service import Service

REPRODUCES = "contract §5 (P26)"


class Mutant(Service):
    async def chat(self, body):
        try:
            return await super().chat(body)
        except ApiError as exc:
            if exc.status == 400 and "context length" in str(exc):
                raise ApiError(500, "internal error: prompt too long", type="internal_server_error") from exc
            raise
