"""Answers 400 whenever the body has an ``n`` field, even ``n: 1`` (Gym's own value)."""
from reference_impl.server.protocol import bad_request
from reference_impl.server.service import Service, json_value

REPRODUCES = "contract §3.1 n (E11)"


class Mutant(Service):
    async def chat(self, body):
        body = json_value(body)
        if isinstance(body, dict) and "n" in body:
            raise bad_request("n: the n parameter is not supported", "n")
        return await super().chat(body)
