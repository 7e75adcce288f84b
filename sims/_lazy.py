"""Lazy re-exports for the ``sims`` packages: a package's public names are loaded from its
modules on first use (PEP 562), so importing a command module does not import Numba or PyBullet
before the arguments are checked."""

from __future__ import annotations

import importlib


def lazy_exports(package: str, table: dict[str, tuple[str, ...]]):
    """``(__getattr__, __dir__, __all__)`` for ``package`` from ``table``: submodule name ->
    the names it provides."""
    where = {name: mod for mod, names in table.items() for name in names}

    def __getattr__(name: str):
        mod = where.get(name)
        if mod is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{mod}"), name)
        setattr(importlib.import_module(package), name, value)  # later look-ups skip this
        return value

    def __dir__():
        return sorted(set(vars(importlib.import_module(package))) | set(where))

    return __getattr__, __dir__, sorted(where)
