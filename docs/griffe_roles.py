"""A griffe extension of the documentation site (``mkdocs.yml``): the docstrings' Sphinx roles
(``:func:`~assemblers.ik.solve_ik```, ``:mod:`.problem```) become code spans, so they read as
names on the site instead of raw reStructuredText.  (They are not turned into links: a role
relative to its module would be a broken reference.)"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|meth|class|mod|data|attr|obj|exc|const|term|ref):"
                   r"`([^`]+)`")


def _code(m: re.Match) -> str:
    name = m.group(1)
    if name.startswith("~"):  # Sphinx's "~": show the last part only
        name = name[1:].split(".")[-1]
    return f"`{name}`"


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj, **kwargs) -> None:
        doc = obj.docstring
        if doc is not None and ":" in doc.value:
            doc.value = _ROLE.sub(_code, doc.value)
