"""The jinja2 environment of the HTML renderers (report page and matrix section), loaded on first use only."""
from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def environment():
    import jinja2

    # StrictUndefined: a template typo fails the tests instead of rendering an empty cell.
    return jinja2.Environment(loader=jinja2.PackageLoader("conformance.report", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
