"""The core's commands (entry points in ``pyproject.toml``; see :mod:`assemblers.cli.registry`).
Plain data: listing commands imports nothing else."""

info = {"help": "summary of an Assembler: platforms, strokes, home pose, legs",
        "module": "assemblers.cli.kinematics", "order": 20}
fk = {"help": "forward kinematics: tool pose and legs for a stack pose Q",
      "module": "assemblers.cli.kinematics", "order": 30}
jacobian = {"help": "the 6 x 6N Jacobian J_Q or J_L and its Frobenius norm",
            "module": "assemblers.cli.kinematics", "order": 40}
legs = {"help": "stack pose from leg lengths (each platform's forward kinematics)",
        "module": "assemblers.cli.kinematics", "order": 50}
solve = {"help": "least-sensitive inverse kinematics for a tool target",
         "module": "assemblers.cli.ik", "order": 60}
trajectory = {"help": "IK along a timed path (straight line + SLERP)",
              "module": "assemblers.cli.ik", "order": 70}
statics = {"help": "leg forces (and tool compliance, deflection) at a pose or a solved target",
           "module": "assemblers.cli.statics", "order": 65}
bench = {"help": "run a benchmark from benchmarks/", "module": "assemblers.cli.bench",
         "order": 150}
calibrate = {"help": "kinematic calibration: plan measurement poses, simulate a campaign, fit "
                     "a calibrated config", "module": "assemblers.cli.calibrate", "order": 75}
warmup = {"help": "compile every kernel for this machine now (the first run does it otherwise)",
          "module": "assemblers.cli.warmup", "order": 145}
