"""The ``hardware`` commands of the ``assemblers`` console script (entry points in
``pyproject.toml``; see :mod:`assemblers.cli.registry`).  Plain data: listing commands imports
nothing else."""

emulate = {"help": "run device emulators on pseudo-terminals (Python, or --device firmware: the "
                   "firmware on simulated boards)", "module": "hardware.cli", "order": 120}
stream = {"help": "stream a trajectory or pose to the platforms over serial",
          "module": "hardware.cli", "order": 130}
