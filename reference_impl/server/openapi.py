"""The reference server's OpenAPI document (``GET /openapi.json``), with the real request bodies.

The routes read their bodies themselves (one error shape for malformed JSON, wrong types and bad values; see
``app``), so FastAPI cannot infer what they take. This module writes it in: each POST route's body is the
JSON Schema of the pydantic model the service validates it with (token-bundle fields included), and every
route may answer the OpenAI error object. A fuzzer (schemathesis, ``tests/reference_impl/server/test_fuzz.py``)
reads the document to generate requests, so it must describe what the server really accepts.
"""
from __future__ import annotations

from typing import Any

from .protocol import ChatRequest, CompletionRequest, DetokenizeRequest, ReloadRequest, TokenizeRequest

BODIES = {
    "/v1/chat/completions": ChatRequest, "/v1/completions": CompletionRequest,
    "/tokenize": TokenizeRequest, "/v1/tokenize": TokenizeRequest,
    "/detokenize": DetokenizeRequest, "/v1/detokenize": DetokenizeRequest,
    "/weights/reload": ReloadRequest,
}
ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["message", "type", "code"],
    "properties": {"message": {"type": "string"}, "type": {"type": "string"}, "code": {"type": "integer"},
                   "param": {"type": ["string", "null"]}}}}}
REF = "#/components/schemas/{model}"


def describe(document: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's generated document with the request bodies and the error responses filled in."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR
    for path, model in BODIES.items():
        operation = document.get("paths", {}).get(path, {}).get("post")
        if operation is None:
            continue
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        operation["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": REF.format(model=model.__name__)}}}}
    for item in document.get("paths", {}).values():
        for operation in item.values():
            operation.setdefault("responses", {})["4XX"] = {
                "description": "an OpenAI-style error object naming the problem",
                "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}}
            operation["responses"].pop("422", None)  # FastAPI's own validation shape is never sent
    return document
