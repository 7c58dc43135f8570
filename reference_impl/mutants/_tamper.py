"""Shared shape of the response-layer mutants: the reference answer, altered after the fact."""
from __future__ import annotations

from typing import Any

from reference_impl.server.service import Service


class ChatTamper(Service):
    """Serve the reference chat response, then let ``tamper`` change it in place (one defect per subclass)."""

    def tamper(self, response: dict[str, Any], body: Any) -> None:
        raise NotImplementedError

    async def chat(self, body: Any) -> dict:
        response = await super().chat(body)
        self.tamper(response, body)
        return response
