"""Redaction of the run's credentials from everything a report keeps (pure: no IO).

An endpoint may echo the ``Authorization`` header back (in an error body, a content string, a model id), and the
harness quotes what endpoints say: request and response bodies, verdicts, notes, error messages. Reports are
CI artefacts that are uploaded and shared, so the key given with ``--api-key`` (or ``$OPENAI_API_KEY``) is replaced
by :data:`MARKER` wherever it appears, before any report sees the text. Gym's placeholder ``dummy_key`` is no
secret and is left alone. The curl lines never hold the key in the first place: they read ``$OPENAI_API_KEY``.

A gateway's URL may carry credentials too (``https://user:token@host/v1``, ``...?api_key=token``), and every
report names its endpoint: the password of such a URL (its user name when it has no password) and the values of
its key-like query parameters are redacted the same way, so the URLs read ``https://user:[redacted]@host/v1``.
"""
from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

MARKER = "[redacted]"
PLACEHOLDERS = frozenset({"", "dummy_key"})  # keys that are no secret (Gym's default)
# A key cut short (an error message keeps the first 200 characters of a body) leaks its beginning: a run of at
# least this many of the key's first characters is redacted as far as it matches (the whole key if shorter).
PARTIAL = 8


# query parameters whose values are credentials (Azure's api-key, signed URLs' sig, OAuth's access_token, ...)
SECRET_PARAMS = frozenset({"key", "api_key", "api-key", "apikey", "token", "access_token", "auth", "sig",
                           "signature", "password", "secret"})


def url_credentials(url: str) -> list[str]:
    """The secrets a URL carries: its password (its user name when there is no password: ``https://token@host``),
    the Basic authorization an HTTP client makes of them, and the values of its key-like query parameters, as
    written and decoded."""
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:  # not a URL the harness could have used; nothing to find
        return []
    raw_user, raw_password = user or "", password or ""  # urlsplit leaves them percent-encoded
    user, password = unquote(raw_user), unquote(raw_password)
    found = [password, raw_password] if password else [user, raw_user] if user else []
    found = [f for f in found if unquote(f) not in PLACEHOLDERS]
    if found:  # what an HTTP client sends for them (Basic auth), and what an endpoint echoing its headers repeats
        found.append(base64.b64encode(f"{user}:{password or ''}".encode()).decode())
    for name, value in parse_qsl(parts.query, keep_blank_values=False):
        if name.lower() in SECRET_PARAMS:
            found += [value, quote(value, safe="")] if value not in PLACEHOLDERS else []
    return [f for f in found if f]


def secrets_of(api_key: str | None, urls: tuple[str, ...] | list[str] = ()) -> tuple[str, ...]:
    """The spellings of ``api_key`` and of the credentials in ``urls`` that may appear in quoted text: as is,
    escaped inside a JSON string or a Python repr (how the client quotes bodies), and percent-encoded. Empty for
    no key or the placeholder and URLs without credentials."""
    values = [] if api_key is None or api_key in PLACEHOLDERS else [api_key]
    for url in urls:
        values += url_credentials(url)
    forms = [f for v in values for f in (v, json.dumps(v)[1:-1], repr(v)[1:-1], quote(v, safe=""))]
    return tuple(dict.fromkeys(f for f in forms if f))  # distinct, in that order


def redact_text(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every occurrence of a secret, and of a secret's first :data:`PARTIAL` or more characters (a
    truncated copy), replaced by :data:`MARKER`. Markers already there are kept whole (redacting twice changes
    nothing, even for a key that is part of the marker's own text)."""
    if MARKER in text:
        return MARKER.join(redact_text(part, secrets) for part in text.split(MARKER))
    for secret in secrets:
        anchor = secret[:PARTIAL]
        start = text.find(anchor)
        if start < 0:
            continue
        out, done = [], 0
        while start >= 0:
            end = start + len(anchor)
            while end < len(text) and end - start < len(secret) and text[end] == secret[end - start]:
                end += 1
            out += [text[done:start], MARKER]
            done = end
            start = text.find(anchor, end)
        out.append(text[done:])
        text = "".join(out)
    return text


def redact(value: Any, secrets: tuple[str, ...]) -> Any:
    """``value`` (JSON-like: str, dict, list, tuple, scalars) with every string redacted, keys included; the same
    object when there is nothing to redact."""
    if not secrets:
        return value
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, dict):
        return {redact(k, secrets): redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    if isinstance(value, tuple):
        items = [redact(v, secrets) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    return value
