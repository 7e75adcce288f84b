"""Inputs shared by tests in several folders (import with ``from support import DUO_TOML``;
``tests/`` is on the path through its conftest.py).

``DUO_TOML``: the text of a small valid config, two identical platforms of one type ``p``, that
tests edit into invalid ones; ``with_joints``: the same with explicit joints in place of its
parametric layout.  ``named_in_error``: bad-input cases whose error names the option.
"""

import shlex

DUO_TOML = """
[platforms.p]
base_radius = 0.15
top_radius = 0.15
base_pair_angle_deg = 15.0
top_pair_angle_deg = 15.0
leg_min = 0.20
leg_max = 0.32

[stack]
platforms = ["p", "p"]
"""
PARAMETRIC_LAYOUT = ("base_radius = 0.15\ntop_radius = 0.15\nbase_pair_angle_deg = 15.0\n"
                     "top_pair_angle_deg = 15.0\n")


def with_joints(base, top) -> str:
    """:data:`DUO_TOML` with the joints ``base`` and ``top`` (lists of rows, or any text) given
    explicitly in place of the parametric layout."""
    return DUO_TOML.replace(PARAMETRIC_LAYOUT, f"base_joints = {base}\ntop_joints = {top}\n")


def named_in_error(*command_lines: str) -> list[tuple[list[str], str]]:
    """``(argv, option)`` cases of a bad-input test: each command line (shell syntax) is split
    into its arguments, and the error it gets must name its first word, the option refused."""
    return [(shlex.split(line), line.split()[0]) for line in command_lines]


_NOTICE = ("assemblers: compiling kernels", "assemblers: kernels compiled", "  compiling:")


def stderr_lines(err: str) -> list[str]:
    """The lines of a command's stderr without the first-run compile notice (``assemblers
    warmup``'s: printed when a kernel group is cold, whatever else the command says; which
    tests see it depends on the order they run in)."""
    lines = [x for x in err.replace("\r", "\n").splitlines() if x.strip()]
    return [x for x in lines if not x.startswith(_NOTICE)
            and not (x.startswith("  ") and ": compiled in " in x)]
