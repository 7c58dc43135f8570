"""Mutants: the reference server with exactly one real-world defect each, to prove the suite's verdicts.

A conformance harness is only as good as the bugs it catches and the correct systems it leaves alone
(issue 5). Each module in ``defects/`` is one mutant, named after the failure it reproduces
(``drift-cases.md``), and defines:

- ``REPRODUCES``: the drift-case / probe ids it stands for;
- ``Mutant``: a subclass of ``reference_impl.server.service.Service`` that overrides one public method: an
  extension point (``plan_prompt``, ``generate``, ``load_weights``) or a route (``chat``, ``tokenize``, ``models``);
- optionally ``FIXTURE``: the fixture whose tokenizer and template it serves with (default
  ``tiny-chatml``; all tiny-chatml variants share the same weights, so one engine serves every mutant);
- optionally ``make_engine(reference: Service) -> Engine``: an engine of its own, for a defect below the
  request layer (``stale_weights``); see ``host``.

``reference_impl.mutants.host`` serves the reference and every mutant from one process and one engine,
each under its own path prefix. Adding a mutant is adding one small file here, one probe in
``tests/reference_impl/mutants/test_defects.py`` and one row in ``expectations.json``.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType

from . import defects

DEFAULT_FIXTURE = "tiny-chatml"


@dataclass(frozen=True)
class MutantSpec:
    name: str
    summary: str
    reproduces: str
    fixture: str
    module: ModuleType


def discover() -> dict[str, MutantSpec]:
    """Every defect module, by mutant name (the module name with ``-`` for ``_``)."""
    found = {}
    for info in sorted(pkgutil.iter_modules(defects.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{defects.__name__}.{info.name}")
        name = info.name.replace("_", "-")
        found[name] = MutantSpec(name, (module.__doc__ or "").strip().splitlines()[0], module.REPRODUCES,
                                 getattr(module, "FIXTURE", DEFAULT_FIXTURE), module)
    return found
