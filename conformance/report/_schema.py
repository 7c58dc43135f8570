"""Field readers for ``gym-conformance/report/1`` documents: each failure names the exact field path.

The plugin and the renderers meet only through the JSON, so a producer bug has to surface as
``results[3].evidence.token_diff.first_diff: expected int or null, got str 'x'`` rather than as a
``KeyError`` deep in a template.
"""
from __future__ import annotations

import math
from typing import Any, Iterable


class ReportError(ValueError):
    """A report document does not follow the schema; ``field`` is the path of the offending value."""

    def __init__(self, field: str, problem: str, source: str | None = None) -> None:
        super().__init__(field, problem)
        self.field, self.problem, self.source = field, problem, source  # source: the file, once known

    def __str__(self) -> str:
        return ": ".join(part for part in (self.source, self.field, self.problem) if part)


_TYPE_NAMES = {bool: "bool", int: "int", float: "number", str: "string", list: "list", dict: "object"}


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def obj(value: Any, field: str, keys: Iterable[str], optional: Iterable[str] = ()) -> dict[str, Any]:
    """An object with exactly ``keys`` (``optional`` ones may be absent); unknown keys are typos."""
    if not isinstance(value, dict):
        raise ReportError(field, f"expected object, got {_describe(value)}")
    keys, optional = list(keys), set(optional)
    for key in keys:
        if key not in value and key not in optional:
            raise ReportError(_join(field, key), "missing")
    extra = sorted(set(value) - set(keys))
    if extra:
        raise ReportError(_join(field, extra[0]), f"unknown field (expected one of {', '.join(keys)})")
    return value


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def get(value: dict[str, Any], key: str, field: str, kind: type | tuple[type, ...], *,
        nullable: bool = False) -> Any:
    """Read ``value[key]`` checked against ``kind`` (int accepted for float; bool never for numbers)."""
    path = _join(field, key)
    item = value.get(key)
    if item is None:
        if nullable:
            return None
        raise ReportError(path, f"expected {_kind_name(kind)}, got null")
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = isinstance(item, kinds) and not (isinstance(item, bool) and bool not in kinds)
    if float in kinds and isinstance(item, int) and not isinstance(item, bool):
        ok, item = True, float(item)
    if not ok:
        null = " or null" if nullable else ""
        raise ReportError(path, f"expected {_kind_name(kind)}{null}, got {_describe(item)}")
    if isinstance(item, float) and not math.isfinite(item):
        raise ReportError(path, f"expected a finite number, got {item!r}")
    return item


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)


def choice(value: dict[str, Any], key: str, field: str, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    item = get(value, key, field, str)
    if item not in allowed:
        raise ReportError(_join(field, key), f"expected one of {', '.join(allowed)}, got {item!r}")
    return item


def list_of(value: dict[str, Any], key: str, field: str, kind: type) -> list[Any]:
    items = get(value, key, field, list)
    path = _join(field, key)
    for index, item in enumerate(items):
        if not isinstance(item, kind) or (isinstance(item, bool) and kind is not bool):
            raise ReportError(f"{path}[{index}]", f"expected {_kind_name(kind)}, got {_describe(item)}")
    return list(items)
