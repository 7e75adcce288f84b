"""The ``sims`` commands of the ``assemblers`` console script (entry points in
``pyproject.toml``; see :mod:`assemblers.cli.registry`).  Plain data: listing commands imports
nothing else."""

demo = {"help": "the main job in one go: IK solve, robustness study and a picture",
        "module": "sims.demo", "order": 10}
robustness = {"help": "Monte Carlo robustness study with report, statistics and plots",
              "module": "sims.robustness.cli", "order": 80}
show = {"help": "render the Assembler at a pose (PNG) or open the GUI",
        "module": "sims.viz.cli", "order": 90}
animate = {"help": "animate a trajectory file to GIF/MP4", "module": "sims.viz.cli",
           "order": 100}
physics = {"help": "PyBullet physics check of a solved pose against the model",
           "module": "sims.viz.cli", "order": 110}
sweep = {"help": "workspace and sensitivity maps over many targets", "module": "sims.sweeps.cli",
         "order": 140}
