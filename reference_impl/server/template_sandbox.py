"""Jinja's sandbox checks for the chat template, decided once per (type, attribute) instead of on every read.

transformers renders chat templates in Jinja's ``ImmutableSandboxedEnvironment``. Every attribute the template
reads (``message.content``, ``content.split``, ``ns.last_query_index``, ``loop.last``) goes through the sandbox's
``getattr``: a Python ``getattr`` that raises ``AttributeError`` for each dict key, then the safety checks
(``is_internal_attribute``, ``modifies_known_mutable``: a dozen ``isinstance`` calls against ABCs). On the
official Qwen3 template that was about 70 % of a render, and the server renders every rollout's whole history
twice a call (profiled in-process on a 32-turn Gym body: a render went from 1.3 to 0.45 ms).

The sandbox's answer for those reads depends on the object's type and the attribute's name only, so it is
remembered per (type, attribute), for the environment transformers compiled for this tokenizer's templates
(``apply_chat_template`` keeps using it; its output is unchanged, which the tests check against an environment
left as Jinja made it):

- a builtin data type (``str``, ``dict``, ``list``, ...) without that attribute: its instances have no
  attributes of their own, so the sandbox would fail the ``getattr`` every time and read the item: it reads the
  item directly;
- an attribute the sandbox found safe: read directly, when the value is plain data or a method of a builtin
  type other than ``str.format``/``format_map`` (which the sandbox wraps: those go to it every time);
- anything else (unsafe attributes, first sight, other values): the sandbox itself decides, as before.
"""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

_PLAIN = frozenset({str, dict, list, tuple, int, float, bool, type(None)})
_FORMAT = frozenset({"format", "format_map"})  # methods the sandbox hands out wrapped, never as they are
_ITEM, _SAFE = 0, 1


def remember_attribute_checks(env: Any) -> bool:
    """Install the per-(type, attribute) memo on a Jinja ``ImmutableSandboxedEnvironment``; False if ``env`` is
    anything else (a subclass may decide on the value too) or has it already."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    if type(env) is not ImmutableSandboxedEnvironment or getattr(env.getattr, "remembers_checks", False):
        return False
    sandbox_getattr = env.getattr
    verdicts: dict[tuple[type, str], int] = {}

    def getattr_(obj: Any, attribute: str) -> Any:
        tp = type(obj)
        kind = verdicts.get((tp, attribute))
        if kind == _ITEM:
            try:
                return obj[attribute]
            except (TypeError, LookupError):
                return env.undefined(obj=obj, name=attribute)
        if kind == _SAFE:
            try:
                value = getattr(obj, attribute)
            except AttributeError:  # a Namespace without that name: the sandbox's own fallback
                return sandbox_getattr(obj, attribute)
            if type(value) in _PLAIN or (tp in _PLAIN and attribute not in _FORMAT):
                return value
            return sandbox_getattr(obj, attribute)
        if tp in _PLAIN and not hasattr(tp, attribute):
            verdicts[(tp, attribute)] = _ITEM
        elif not attribute.startswith("_"):
            try:
                value = getattr(obj, attribute)
            except AttributeError:
                pass
            else:
                if env.is_safe_attribute(obj, attribute, value):
                    verdicts[(tp, attribute)] = _SAFE
        return sandbox_getattr(obj, attribute)

    getattr_.remembers_checks = True  # type: ignore[attr-defined]
    env.getattr = getattr_
    return True


def chat_template_environments(tokenizer) -> list[Any]:
    """The Jinja environments ``apply_chat_template`` renders this tokenizer's templates in (one per template).

    transformers compiles each template once (``_compile_jinja_template``, an ``lru_cache`` on the template's
    text) and renders every later call in that environment. The function is private: if a transformers release
    moves it, the server renders as fast as transformers alone does (a test pins that it is found here).
    """
    try:
        from transformers.utils.chat_template_utils import _compile_jinja_template
    except ImportError:
        log.info("transformers has no _compile_jinja_template: chat templates render with Jinja's checks per read")
        return []
    templates = tokenizer.chat_template
    texts = list(templates.values()) if isinstance(templates, dict) else [templates]
    return [_compile_jinja_template(text).environment for text in texts if isinstance(text, str)]
