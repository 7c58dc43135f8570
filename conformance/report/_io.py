"""File output shared by the renderers: atomic writes and readable JSON."""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file in the same folder and ``os.replace``.

    The temporary file sits next to the target so the rename stays on one filesystem (and is atomic
    there). CI dashboards may be watching ``reports/``: they see the old file or the new one, never a
    truncated one, and an exception while writing leaves the old file untouched.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; reports are shared artefacts (CI uploads, web servers), so keep the
        # existing file's mode or fall back to the usual 0644.
        os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else 0o644)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target


def pretty_json(value: Any, indent: int = 2) -> str:
    """Indented JSON that keeps lists of scalars on one line.

    Token-id lists run to thousands of entries; one id per line (``json.dumps(indent=2)``) makes
    report.json and the HTML request panes unreadable, while a single line stays copy-pastable.
    Strict JSON: ``NaN`` raises ``ValueError`` (callers replace non-finite floats first).
    """

    def scalar(item: Any) -> str:
        return json.dumps(item, ensure_ascii=False, allow_nan=False)

    def fmt(item: Any, level: int) -> str:
        pad, inner = " " * (indent * level), " " * (indent * (level + 1))
        if isinstance(item, dict) and item:
            body = ",\n".join(f"{inner}{scalar(str(key))}: {fmt(val, level + 1)}"
                               for key, val in item.items())
            return "{\n" + body + "\n" + pad + "}"
        if isinstance(item, (list, tuple)) and any(isinstance(x, (dict, list, tuple)) for x in item):
            return "[\n" + ",\n".join(inner + fmt(x, level + 1) for x in item) + "\n" + pad + "]"
        if isinstance(item, (list, tuple)):
            return "[" + ", ".join(scalar(x) for x in item) + "]"
        return scalar(item)

    return fmt(value, 0)


def json_safe(value: Any) -> Any:
    """Replace non-finite floats by ``"NaN"``/``"Infinity"``/``"-Infinity"`` (strict JSON has none).

    A NaN log prob is exactly the evidence E4 reports, so it must survive as something readable.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value
