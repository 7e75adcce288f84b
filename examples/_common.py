"""The command line every example script takes: ``python examples/NAME.py [--out DIR] [--small]``.

Not an example itself: the scripts import it (``from _common import example_args``; Python puts
a script's own folder on the import path), so that each of them starts with what it shows.
"""

import argparse
import os
from pathlib import Path


def example_args(doc: str, folder: str = "") -> tuple[Path, bool]:
    """Parse ``--out DIR`` (default examples-out) and ``--small`` (a quick run; also
    ``ASSEMBLERS_EXAMPLE_SMALL=1``) for the example whose docstring is ``doc``.

    Returns the output folder, ``DIR/folder`` (not created), and whether to run small.
    """
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--out", default="examples-out", help="output folder (default examples-out)")
    p.add_argument("--small", action="store_true",
                   default=os.environ.get("ASSEMBLERS_EXAMPLE_SMALL") == "1",
                   help="a quick run (also ASSEMBLERS_EXAMPLE_SMALL=1)")
    args = p.parse_args()
    return Path(args.out) / folder, args.small
