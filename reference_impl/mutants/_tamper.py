"""Shared pieces of the mutants: the response-layer tamper shape, and the carried prefix the older algorithms use."""
from __future__ import annotations

from typing import Any

from reference_impl.server.correction import check_vocab
from reference_impl.server.protocol import bad_request
from reference_impl.server.service import Service
from reference_impl.server.splice import SpliceError, splice


class ChatTamper(Service):
    """Serve the reference chat response, then let ``tamper`` change it in place (one defect per subclass)."""

    def tamper(self, response: dict[str, Any], body: Any) -> None:
        raise NotImplementedError

    async def chat(self, body: Any) -> dict:
        response = await super().chat(body)
        self.tamper(response, body)
        return response


def template_render(service: Service, req) -> list[int]:
    """T of contract §7.2: the whole request rendered by the mutant's template, with the generation prompt."""
    return service.renderer.render(req.messages, req.tools, req.chat_template_kwargs, add_generation_prompt=True)


def carried_prefix(service: Service, req) -> list[int] | None:
    """M as every correction generation picks it (contract §7.3): explicit ``required_prefix_token_ids``,
    else P + G of the last message carrying ids; vocabulary-checked like the reference. None: no prefix."""
    if req.required_prefix_token_ids is not None:
        prefix = list(req.required_prefix_token_ids)
    else:
        carriers = [m for m in req.messages if m.has_bundle]
        if not carriers:
            return None
        prefix = [*carriers[-1].prompt_token_ids, *carriers[-1].generation_token_ids]
    check_vocab(prefix, service.engine.vocab_size, "messages")
    return prefix


def splice_through(service: Service, req, boundary: int, prefix: list[int]) -> list[int]:
    """The §7.4 splice of ``prefix`` with the template prefix rendered through ``messages[boundary]`` -- none of
    the reference's refusals (edited or non-monotonic history) applied."""
    template_prefix = service.renderer.render(req.messages[:boundary + 1], req.tools, req.chat_template_kwargs,
                                              add_generation_prompt=False)
    try:
        return splice(prefix, template_prefix, template_render(service, req), service.renderer.eos_id,
                      stop_ids=service.engine.stop_ids)
    except SpliceError as exc:
        raise bad_request(f"cannot splice: {exc}", "messages") from exc
