"""The one set of argument parsers of the ``assemblers`` commands.

Numbers, targets, stack poses, counts, standard deviations and bounded values are parsed here,
and ``--config`` / ``--json`` are declared here, so every command reads them the same way and
reports a bad value the same way: :class:`CLIError` with one line naming the option (exit 2).
Standard library only at import time (``assemblers --help`` must stay fast).
"""

from __future__ import annotations

import argparse
import math

__all__ = [
    "STACK_POSE_METAVAR", "TARGET_METAVAR", "CLIError", "add_config_arg", "add_json_arg",
    "add_stack_pose_arg", "add_target_arg", "check_number", "load_assembler", "parse_count", "parse_numbers",
    "parse_sigma", "parse_stack_pose", "parse_target", "stack_pose_or_home",
]

#: Most numbers one option takes (a stack pose of the largest stack is 192).
MAX_NUMBERS = 10_000
#: Largest size of a pose, target or leg-length component (m or rad): beyond it, squares and
#: products of the kinematics overflow long before anything physical happens.
MAX_POSE = 1e3
#: How the options of a tool pose (:func:`parse_target`) and of a stack pose
#: (:func:`parse_stack_pose`) show their value in ``--help``.
TARGET_METAVAR = '"x y z roll pitch yaw"'
STACK_POSE_METAVAR = '"q1 ... q6N"'


class CLIError(Exception):
    """Raised by command code for a clean exit with a message (status 2 unless given)."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


def add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default=None, metavar="FILE|NAME",
                   help="config file or shipped config name (default: the default Assembler, "
                        "configs/assembler.toml)")


def add_json_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true",
                   help="print the result as JSON for scripts (non-finite numbers as null)")


def add_target_arg(p, help: str | None = None, **kw):
    """The one ``--target "x y z roll pitch yaw"`` option (world frame, m, rad); default None,
    which the commands read as the config's default target (:mod:`.defaults`) unless ``help``
    says otherwise."""
    from .defaults import TARGET_HELP

    return p.add_argument("--target", default=None, metavar=TARGET_METAVAR,
                          help=help or TARGET_HELP, **kw)


def load_assembler(args):
    """The Assembler named by ``args.config`` (a ConfigError becomes exit 2 in the dispatcher)."""
    from ..model.config import load_config

    return load_config(args.config)


def _float(x: str) -> float | None:
    try:
        return float(x)
    except ValueError:
        return None


def parse_numbers(text: str, name: str, count: int | None = None, *,
                  bound: float | None = None) -> list[float]:
    """Parse ``"1 2 3"`` or ``"1,2,3"`` into floats; rejects NaN/inf, values larger than
    ``bound`` in size, a wrong count and more than :data:`MAX_NUMBERS` numbers (raises
    :class:`CLIError` naming the option)."""
    parts = [x for x in text.replace(",", " ").split() if x]
    if len(parts) > MAX_NUMBERS:
        raise CLIError(f"{name}: {len(parts)} numbers; at most {MAX_NUMBERS}")
    vals = []
    for x in parts:
        v = _float(x)
        if v is None:
            raise CLIError(f"{name}: {x[:40]!r} is not a number")
        vals.append(v)
    for i, v in enumerate(vals):
        if not math.isfinite(v):
            raise CLIError(f"{name}: value {i} is {v}; only finite numbers are accepted")
        if bound is not None and abs(v) > bound:
            raise CLIError(f"{name}: value {i} is {v}; at most {bound:g} in size")
    if count is not None and len(vals) != count:
        raise CLIError(f"{name}: expected {count} numbers, got {len(vals)}")
    return vals


def parse_target(text: str, name: str = "--target"):
    """``"x y z roll pitch yaw"`` (m, rad; tool pose in the world frame) -> (4, 4) transform."""
    from ..geometry.api import pose_to_transform

    return pose_to_transform(parse_numbers(text, name, 6, bound=MAX_POSE))


def parse_stack_pose(text: str, asm, name: str = "--Q"):
    """``"q1 ... q6N"``: 6 numbers per platform (x y z m, roll pitch yaw rad), bottom first ->
    (6N,) float64 stack pose Q."""
    import numpy as np

    return np.array(parse_numbers(text, name, 6 * asm.n_platforms, bound=MAX_POSE))


def add_stack_pose_arg(p: argparse.ArgumentParser, default: str = "the home pose") -> None:
    """``--Q``, a stack pose (read by :func:`stack_pose_or_home`); ``default`` says what stands
    in for it when it is not given."""
    p.add_argument("--Q", default=None, metavar=STACK_POSE_METAVAR,
                   help="stack pose: 6 numbers per platform (x y z m, roll pitch yaw rad), bottom "
                        f"first; default: {default}")


def stack_pose_or_home(args, asm):
    """The stack pose ``--Q`` (see :func:`add_stack_pose_arg`), or the home pose without it."""
    from ..kinematics.api import home_pose

    return home_pose(asm) if args.Q is None else parse_stack_pose(args.Q, asm, "--Q")


def parse_count(text, name: str, lo: int = 0, hi: int | None = None) -> int:
    """An integer count given as ``"200000"`` or ``"2e5"`` in ``[lo, hi]``."""
    v = _float(str(text))
    if v is None:
        raise CLIError(f"{name}: {str(text)[:40]!r} is not a number")
    if not (math.isfinite(v) and v == int(v) and v >= lo):
        raise CLIError(f"{name}: must be an integer >= {lo}, got {text!r}")
    if hi is not None and v > hi:
        raise CLIError(f"{name}: at most {hi:.3g}, got {text!r}")
    return int(v)


def parse_sigma(text: str | None, name: str, n: int | None = None):
    """Standard deviations: one positive finite number (``n`` None) -> float, or 1 or ``n``
    numbers -> list of ``n`` floats.  ``None`` stays None (the option was not given)."""
    if text is None:
        return None
    parts = text.replace(",", " ").split()
    vals = [_float(x) for x in parts]
    if any(v is None for v in vals):
        raise CLIError(f"{name}: {text[:40]!r} is not a number")
    if n is not None and len(vals) == 1:
        vals = vals * n
    if n is not None and len(vals) != n:
        raise CLIError(f"{name}: give 1 or {n} numbers, got {len(vals)}")
    if n is None and len(vals) != 1:
        raise CLIError(f"{name}: give one number, got {len(vals)}")
    if not all(math.isfinite(v) and v > 0 for v in vals):
        raise CLIError(f"{name}: standard deviations must be finite and > 0, got {text!r}")
    return vals if n is not None else vals[0]


def check_number(value, name: str, lo: float | None = None, hi: float | None = None, *,
                 lo_open: bool = False):
    """Check a value argparse already converted (``type=float`` or ``int``): finite and in
    ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``); returns it.  None (not given) passes."""
    if value is None:
        return None
    bad = not math.isfinite(value)
    bad = bad or (lo is not None and (value <= lo if lo_open else value < lo))
    bad = bad or (hi is not None and value > hi)
    if bad:
        if lo is not None and hi is not None:
            span = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
            raise CLIError(f"{name}: must be in {span}, got {value}")
        if lo is not None:
            raise CLIError(f"{name}: must be {'>' if lo_open else '>='} {lo:g}, got {value}")
        if hi is not None:
            raise CLIError(f"{name}: must be <= {hi:g}, got {value}")
        raise CLIError(f"{name}: must be a finite number, got {value}")
    return value
