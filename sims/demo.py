"""``assemblers demo``: the main job on one Assembler, in one process.

1. the least-sensitive IK solve of a target, with the cost reduction against the ``even`` baseline
   (``assemblers solve``);
2. a Monte Carlo robustness study of that target: the optimal pose against the baselines and
   random solutions under the config's disturbances, report and figures (``assemblers
   robustness``);
3. a picture of the Assembler at the solved pose (``assemblers show``).

Each step is the corresponding command, run with the options below, so its output is exactly
what that command prints.  Exit status: 0 all done, 1 the target is not reachable (the other
steps still run where they can), 2 bad input.
"""

from __future__ import annotations

from assemblers import files
from assemblers.cli import add_config_arg, add_target_arg, parse_count, parse_numbers
from assemblers.cli.defaults import DEFAULT_TARGET_TEXT as DEFAULT_TARGET  # noqa: F401  (the demo's, public)
from assemblers.cli.registry import find


def configure_demo(p):
    add_config_arg(p)
    add_target_arg(p)
    p.add_argument("--samples", default="2e5", metavar="N",
                   help="Monte Carlo samples per pose (default 2e5: a few seconds)")
    p.add_argument("--out", default="demo", metavar="DIR",
                   help="where the report, figures and picture go (default ./demo)")
    p.add_argument("--seed", default="0", metavar="N", help="Monte Carlo seed (default 0)")


def _command(name: str, argv: list[str]) -> int:
    """Run ``assemblers NAME ARGV`` in this process (errors propagate to the CLI's handler)."""
    return find(name).run(argv)


def run_demo(args) -> int:
    # bad input fails before any work or file
    if args.target is None:  # the config's default target (for the default Assembler: the same)
        from assemblers.cli import load_assembler
        from assemblers.cli.defaults import default_target, target_text

        args.target = target_text(default_target(load_assembler(args)))
    parse_numbers(args.target, "--target", 6)
    parse_count(args.samples, "--samples", 1)
    parse_count(args.seed, "--seed", 0)
    out = files.output_dir(args.out, "--out")
    config = ["--config", args.config] if args.config else []

    # (`assemblers solve` loads or compiles its kernels before it times the solve)
    print("== 1/3  least-sensitive IK  (assemblers solve)\n")
    status = _command("solve", [*config, "--target", args.target])
    if status != 0:
        print("\nthe target is not reachable: no robustness study or picture of it")
        return status

    print(f"\n== 2/3  Monte Carlo robustness  (assemblers robustness, {args.samples} samples)\n")
    status = _command("robustness", [*config, "--target", args.target, "--samples", args.samples,
                                     "--seed", args.seed, "--out", str(out / "robustness")])

    print("\n== 3/3  picture  (assemblers show)\n")
    picture = out / "assembler.png"
    status = max(status, _command("show", [*config, "--target", args.target,
                                           "--out", str(picture)]))
    print(f"\ndone: {out / 'robustness' / 'report.md'} and {picture}")
    return status
