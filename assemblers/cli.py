"""The ``assemblers`` console script: one subcommand per job.

Subcommands are registered by name with the module that implements them; a module is imported only
when its subcommand runs, so ``assemblers info`` never loads pybullet, matplotlib, numba or serial.
A command module defines ``configure_<name>(parser)`` and ``run_<name>(args) -> int``.

Exit status: 0 success, 1 the job ran but failed (e.g. unreachable target), 2 bad input.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help).  Order is the order shown in ``assemblers --help``.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("sims.demo", "the main job in one go: IK solve, robustness study and a picture"),
    "info": ("assemblers.commands", "summary of an Assembler: platforms, strokes, home pose, legs"),
    "fk": ("assemblers.commands", "forward kinematics: tool pose and legs for a stack pose Q"),
    "jacobian": ("assemblers.commands", "the 6 x 6N Jacobian J_Q or J_L and its Frobenius norm"),
    "legs": ("assemblers.commands", "stack pose from leg lengths (each platform's forward kinematics)"),
    "solve": ("assemblers.commands_ik", "least-sensitive inverse kinematics for a tool target"),
    "trajectory": ("assemblers.commands_ik", "IK along a timed path (straight line + SLERP)"),
    "robustness": ("sims.cli", "Monte Carlo robustness study with report, statistics and plots"),
    "show": ("sims.view_cli", "render the Assembler at a pose (PNG) or open the GUI"),
    "animate": ("sims.view_cli", "animate a trajectory file to GIF/MP4"),
    "physics": ("sims.view_cli", "PyBullet physics check of a solved pose against the model"),
    "emulate": ("hardware.cli", "run the device emulator on a pseudo-terminal"),
    "stream": ("hardware.cli", "stream a trajectory or pose to the platforms over serial"),
    "sweep": ("sims.sweep_cli", "workspace and sensitivity maps over many targets"),
    "bench": ("assemblers.commands", "run a benchmark from benchmarks/"),
}


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
    p.add_argument("--json", action="store_true", help="print the result as JSON for scripts")


def parse_numbers(text: str, name: str, count: int | None = None) -> list[float]:
    """Parse ``"1 2 3"`` or ``"1,2,3"`` into floats; rejects NaN/inf and a wrong count
    (raises :class:`CLIError` naming the option)."""
    import math

    parts = [x for x in text.replace(",", " ").split() if x]
    try:
        vals = [float(x) for x in parts]
    except ValueError:
        bad = next(x for x in parts if not _is_float(x))
        raise CLIError(f"{name}: {bad!r} is not a number") from None
    for i, v in enumerate(vals):
        if not math.isfinite(v):
            raise CLIError(f"{name}: value {i} is {v}; only finite numbers are accepted")
    if count is not None and len(vals) != count:
        raise CLIError(f"{name}: expected {count} numbers, got {len(vals)}")
    return vals


def _is_float(x: str) -> bool:
    try:
        float(x)
        return True
    except ValueError:
        return False


def parse_target(text: str, name: str = "--target"):
    """``"x y z roll pitch yaw"`` (m, rad; tool pose in the world frame) -> (4, 4) transform."""
    from .transforms import pose_to_transform

    return pose_to_transform(parse_numbers(text, name, 6))


def load_assembler(args):
    """The Assembler named by ``args.config`` (a ConfigError becomes exit 2 in :func:`main`)."""
    from .config import load_config

    return load_config(args.config)


def _top_help() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: assemblers <command> [options]   (assemblers <command> --help for more)", "",
             "Stacked Stewart-platform manipulators: kinematics, least-sensitive IK, robustness,",
             "visualization and hardware streaming.", "", "commands:"]
    lines += [f"  {n.ljust(width)}  {h}" for n, (_, h) in COMMANDS.items()]
    lines += ["", "exit status: 0 success, 1 job ran but failed (e.g. unreachable), 2 bad input"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_top_help())
        return 0
    if argv[0] in ("-V", "--version"):
        from importlib.metadata import version

        print(version("assemblers"))
        return 0
    name = argv[0]
    if name not in COMMANDS:
        import difflib

        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        print(f"assemblers: error: unknown command {name!r}{hint}; see 'assemblers --help'",
              file=sys.stderr)
        return 2
    module_name, help_text = COMMANDS[name]
    parser = argparse.ArgumentParser(prog=f"assemblers {name}", description=help_text)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print(f"assemblers {name}: error: this command is not available: {exc}", file=sys.stderr)
        return 2
    getattr(module, f"configure_{name}")(parser)
    args = parser.parse_args(argv[1:])  # argparse exits 2 with a usage line on bad arguments
    from .errors import InputError

    try:
        return int(getattr(module, f"run_{name}")(args) or 0)
    except CLIError as exc:
        print(f"assemblers {name}: error: {exc}", file=sys.stderr)
        return exc.status
    except InputError as exc:
        print(f"assemblers {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"assemblers {name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    # Run the package's module, not this __main__ copy, so CLIError raised by command modules is
    # the class main() catches (python -m assemblers.cli).
    from assemblers.cli import main as _main

    sys.exit(_main())
