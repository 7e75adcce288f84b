"""The ``assemblers`` console script: the top floor of the package.

* :mod:`.main` - the dispatcher (:func:`main`): finds the command, maps every kind of bad input
  to one line on stderr and exit status 2
* :mod:`.registry` - the commands, from the ``assemblers.commands`` entry points (the core's
  in :mod:`.catalog`, ``sims``' and ``hardware``'s in their own catalogs)
* :mod:`.args` - the one set of argument parsers (numbers, targets, counts, sigmas, ``--config``,
  ``--json``)
* :mod:`.render` - the one renderer (text tables; strict JSON, non-finite numbers as null)
* :mod:`.kinematics` (info, fk, jacobian, legs), :mod:`.ik` (solve, trajectory),
  :mod:`.bench` - the core's command groups

Nothing here imports NumPy until a command runs.
"""

from . import args as _args
from .args import *  # noqa: F403  (the one argument module's public names)
from .main import main

__all__ = ["COMMANDS", "main", *_args.__all__]  # noqa: F405  (COMMANDS: __getattr__)


def __getattr__(name):
    if name == "COMMANDS":  # name -> (module, one-line help), as before the registry existed
        from .registry import commands

        return {n: (c.module, c.help) for n, c in commands().items()}
    raise AttributeError(f"module 'assemblers.cli' has no attribute {name!r}")
