"""The one error shape every environment route answers with, the OpenAI one.

A framework's Gym integration logs whatever body a failed ``/seed_session`` or ``/verify`` returns, and Gym's
simple agent hands a tool route's body to the model verbatim: an error object that names the offending field
is what makes either of them actionable. This module is plain Python (no web framework) so the pure request
checks in ``verify`` and ``tasks`` can raise it too.
"""
from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Rendered as ``{"error": {"message", "type", "param", "code": null}}`` with HTTP ``status``."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 type: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.type = status, message, param, type

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": None}}


def invalid(param: str, message: str) -> ApiError:
    """A well-formed JSON body with a missing or mistyped field: 422, the field named in message and param."""
    return ApiError(422, f"{param}: {message}", param=param)


def require_object(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(param, f"must be a JSON object, got {_json_type(value)}")
    return value


def require_string(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise invalid(param, f"must be a string, got {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type (what the client sent, in its own terms)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
