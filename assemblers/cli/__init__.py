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

from .args import (
    STACK_POSE_METAVAR,
    TARGET_METAVAR,
    CLIError,
    add_config_arg,
    add_json_arg,
    add_stack_pose_arg,
    check_number,
    load_assembler,
    parse_count,
    parse_numbers,
    parse_sigma,
    parse_stack_pose,
    parse_target,
    stack_pose_or_home,
)
from .main import main

__all__ = [
    "COMMANDS", "STACK_POSE_METAVAR", "TARGET_METAVAR", "CLIError", "add_config_arg",
    "add_json_arg", "add_stack_pose_arg", "check_number", "load_assembler", "main",
    "parse_count", "parse_numbers", "parse_sigma", "parse_stack_pose", "parse_target",
    "stack_pose_or_home",
]


def __getattr__(name):
    if name == "COMMANDS":  # name -> (module, one-line help), as before the registry existed
        from .registry import commands

        return {n: (c.module, c.help) for n, c in commands().items()}
    raise AttributeError(f"module 'assemblers.cli' has no attribute {name!r}")
