"""Returns ``tool_calls[].function.arguments`` as a JSON object instead of a JSON string."""
import json

from reference_impl.mutants._tamper import ChatTamper

REPRODUCES = "tool-call shape (E14): arguments must be a JSON string, as OpenAI and Gym's converters expect"


class Mutant(ChatTamper):
    def tamper(self, response, body):
        for call in response["choices"][0]["message"].get("tool_calls") or []:
            call["function"]["arguments"] = json.loads(call["function"]["arguments"])
