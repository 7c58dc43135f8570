"""The one tool the multi-turn probes use, and the text a hermes-style model emits to call it."""
from __future__ import annotations

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.",
                                            "parameters": {"type": "object", "properties": {
                                                "city": {"type": "string"}, "unit": {"type": "string"}}}}}
TOOLS = [WEATHER]


def tool_call_text(args_json: str, name: str = "get_weather") -> str:
    """A generated tool call as the model wrote it (``args_json`` verbatim: spacing and key order are the model's)."""
    return f'<tool_call>\n{{"name": "{name}", "arguments": {args_json}}}\n</tool_call>'
