"""The ``assemblers`` console script's dispatcher: one subcommand per job.

Subcommands come from the ``assemblers.commands`` entry points (:mod:`.registry`); a command's
module is imported only when it runs, so ``assemblers --help`` never loads NumPy, JAX,
pybullet, matplotlib, Numba or serial.

Exit status: 0 success, 1 the job ran but failed (e.g. unreachable target), 2 bad input (one
line on stderr, no traceback), 130 interrupted.
"""

from __future__ import annotations

import os
import sys

from . import registry
from .args import CLIError

USAGE = "usage: assemblers <command> [options]   (assemblers <command> --help for more)"


def top_help() -> str:
    """The text of ``assemblers --help``: every registered command with its one-line help."""
    cmds = registry.commands()
    lines = [USAGE, "",
             "Stacked Stewart-platform manipulators: kinematics, least-sensitive IK, robustness,",
             "visualization and hardware streaming.", "", "commands:"]
    if cmds:
        width = max(len(n) for n in cmds)
        lines += [f"  {n.ljust(width)}  {c.help}" for n, c in cmds.items()]
    else:
        lines += ["  (none registered: install the package, e.g. pip install -e .)"]
    lines += ["", "exit status: 0 success, 1 job ran but failed (e.g. unreachable), 2 bad input"]
    return "\n".join(lines)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("assemblers")
    except PackageNotFoundError:  # a source tree that is not installed
        from .. import __version__

        return __version__


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def error_status(name: str, exc: BaseException) -> int | None:
    """Print the one-line message for ``exc`` raised by command ``name`` and return its exit
    status, or None when ``exc`` is not an error of the input (a bug: let it propagate)."""
    from ..errors import InputError

    prefix = f"assemblers {name}: error:"
    if isinstance(exc, CLIError):
        status, msg = exc.status, _one_line(exc)
    elif isinstance(exc, InputError):
        status, msg = 2, _one_line(exc)
    elif isinstance(exc, RecursionError):
        status, msg = 2, "input nested too deeply"
    elif isinstance(exc, MemoryError):
        status, msg = 2, "out of memory: the input asks for more than this machine has"
    elif isinstance(exc, UnicodeError):
        status, msg = 2, f"text that is not valid UTF-8 ({_one_line(exc)})"
    elif isinstance(exc, OSError) and exc.filename is not None:
        status, msg = 2, f"{exc.filename}: {exc.strerror or _one_line(exc)}"
    else:
        return None
    print(f"{prefix} {msg}", file=sys.stderr, flush=True)
    return status


def _quiet_broken_stdout() -> None:
    # stdout's reader went away (``assemblers info | head -1``): point stdout at /dev/null so
    # the interpreter's final flush does not print a second error
    if sys.stdout is sys.__stdout__:
        try:
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, sys.stdout.fileno())
            os.close(fd)
        except (OSError, ValueError):
            pass


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(top_help())
        return 0
    if argv[0] in ("-V", "--version"):
        print(version())
        return 0
    name = argv[0]
    try:
        return _dispatch(name, argv[1:])
    except KeyboardInterrupt:  # also while a command's modules are still being imported
        print(f"assemblers {name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _quiet_broken_stdout()
        return 0


def _dispatch(name: str, argv: list[str]) -> int:
    try:
        cmd = registry.find(name)
    except registry.CommandUnavailable as exc:
        print(f"assemblers {name}: error: this command is not available: {exc}", file=sys.stderr)
        return 2
    if cmd is None:
        import difflib

        close = difflib.get_close_matches(name, registry.names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        print(f"assemblers: error: unknown command {name!r}{hint}; see 'assemblers --help'",
              file=sys.stderr)
        return 2
    try:
        module = cmd.load()
    except ImportError as exc:
        print(f"assemblers {name}: error: this command is not available: {exc}", file=sys.stderr)
        return 2
    args = cmd.parser(module).parse_args(argv)  # argparse exits 2 with a usage line
    from .warmup import first_compile_notice  # says so when kernels compile (first run)

    try:
        with first_compile_notice(name, argv):
            return int(getattr(module, f"run_{name}")(args) or 0)
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except Exception as exc:
        status = error_status(name, exc)
        if status is None:
            raise
        return status
