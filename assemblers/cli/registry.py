"""Which subcommands exist: the ``assemblers.commands`` entry points.

A package adds commands to ``assemblers`` by declaring entry points in its ``pyproject.toml``::

    [project.entry-points."assemblers.commands"]
    robustness = "sims.catalog:robustness"

Each names a plain dict in a module that imports nothing heavy (a *catalog*; the three
catalogs of this project read theirs from the ``commands.toml`` beside them)::

    robustness = {"help": "Monte Carlo robustness study ...",   # one line for --help
                  "module": "sims.robustness.cli",              # imported only when it runs
                  "order": 80}                                  # place in --help (optional)

``module`` defines ``configure_<name>(parser)`` and ``run_<name>(args) -> int``.  Listing the
commands loads the catalogs only, never a command's module, so ``assemblers --help`` imports
neither NumPy nor JAX.  The core's own commands are registered the same way
(:mod:`assemblers.cli.catalog`); no core module names ``sims`` or ``hardware``.
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass

GROUP = "assemblers.commands"


@dataclass(frozen=True)
class Command:
    """One subcommand: ``name``, one-line ``help``, the ``module`` that implements it and its
    place ``order`` in the command list."""

    name: str
    help: str
    module: str
    order: float = 1000.0

    def load(self):
        """The implementing module (ImportError when its dependencies are missing)."""
        return importlib.import_module(self.module)

    def parser(self, module=None) -> argparse.ArgumentParser:
        """An argument parser for ``assemblers <name>`` configured by the module."""
        module = self.load() if module is None else module
        p = argparse.ArgumentParser(prog=f"assemblers {self.name}", description=self.help)
        getattr(module, f"configure_{self.name}")(p)
        return p

    def run(self, argv: list[str]) -> int:
        """Parse ``argv`` and run the command in this process (errors propagate)."""
        module = self.load()
        args = self.parser(module).parse_args(argv)
        return int(getattr(module, f"run_{self.name}")(args) or 0)


class CommandUnavailable(Exception):
    """A registered command whose catalog entry cannot be loaded or is malformed."""


def _entry_points():
    from importlib.metadata import entry_points

    seen = {}
    for ep in entry_points(group=GROUP):
        seen.setdefault(ep.name, ep)  # the first distribution on sys.path wins
    return seen


def _command(ep) -> Command:
    try:
        spec = ep.load()
        return Command(ep.name, str(spec["help"]), str(spec["module"]),
                       float(spec.get("order", 1000.0)))
    except Exception as exc:  # noqa: BLE001 - a broken plug-in must not break the others
        raise CommandUnavailable(f"{ep.value}: {type(exc).__name__}: {exc}") from None


def names() -> list[str]:
    """Names of every registered command (nothing is imported)."""
    return sorted(_entry_points())


def find(name: str) -> Command | None:
    """The registered command ``name``, or None.  Loads only its own catalog entry; raises
    :class:`CommandUnavailable` when that entry is broken."""
    ep = _entry_points().get(name)
    return None if ep is None else _command(ep)


def commands() -> dict[str, Command]:
    """Every registered command, in ``--help`` order; broken entries are left out."""
    out = []
    for ep in _entry_points().values():
        try:
            out.append(_command(ep))
        except CommandUnavailable:
            continue
    return {c.name: c for c in sorted(out, key=lambda c: (c.order, c.name))}
