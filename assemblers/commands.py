"""Compatibility shim: the core commands live in :mod:`assemblers.cli.kinematics` and
:mod:`assemblers.cli.bench`; the table renderer in :mod:`assemblers.cli.render`."""

from .cli.bench import configure_bench, run_bench  # noqa: F401
from .cli.kinematics import *  # noqa: F403
from .cli.kinematics import (  # noqa: F401
    _add_Q_arg,
    _get_Q,
    _unit,
    configure_fk,
    configure_info,
    configure_jacobian,
    configure_legs,
    run_fk,
    run_info,
    run_jacobian,
    run_legs,
)
from .cli.render import pose_str as _pose_str  # noqa: F401
from .cli.render import print_json as _print_json  # noqa: F401
from .cli.render import table  # noqa: F401
