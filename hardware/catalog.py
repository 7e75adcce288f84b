"""The ``hardware`` commands of the ``assemblers`` console script (entry points in
``pyproject.toml``; see :mod:`assemblers.cli.registry`).  The data is in ``commands.toml`` beside this file;
listing commands imports nothing else."""

import tomllib
from pathlib import Path

# one module-level dict per command (the entry points name them): {"help", "module", "order"}
globals().update(tomllib.loads(Path(__file__).with_name("commands.toml").read_text("utf-8")))
