"""Compatibility shim: ``solve`` and ``trajectory`` live in :mod:`assemblers.cli.ik`."""

from .cli.ik import *  # noqa: F403
from .cli.ik import (  # noqa: F401
    _target,
    configure_solve,
    configure_trajectory,
    print_result,
    read_targets,
    result_doc,
    run_solve,
    run_trajectory,
)
