"""Kinematic calibration: from a built Assembler's measurements to a model that matches it
(docs/calibration.md).

* :func:`calibrate` (:mod:`.fit`): the error model fitted to a measurement campaign ->
  :class:`CalibrationResult` (the calibrated Assembler, estimates, standard deviations,
  residuals, what cannot be identified);
* :func:`plan_poses` (:func:`.plan.plan`): which poses to measure (D-optimal over candidate
  poses) and the uncertainty they predict;
* :func:`simulate_campaign` (:func:`.simulate.simulate`): a synthetic campaign on a perturbed
  model;
* :mod:`.measurements`: the CSV format; :mod:`.params`: the parameter vector;
  :mod:`.jaxmodel`: the measurement model and its Jacobian (JAX, implicit derivative of each
  platform's pose from its legs); :mod:`.report`: the report folder.

Loaded on first use: importing this package does not import JAX.
"""

_LAZY = {"calibrate": "fit", "CalibrationResult": "fit", "RowResiduals": "fit",
         "Plan": "plan", "Prediction": "plan", "predict": "plan",
         "perturb": "simulate", "measure": "simulate", "tool_errors": "simulate",
         "Campaign": "simulate", "Measurements": "measurements",
         "read_measurements": "measurements", "write_measurements": "measurements",
         "parse_measurements": "measurements", "write_report": "report",
         "random_poses": "poses"}
#: public names that differ from their definitions' (the modules plan and simulate keep theirs)
_RENAMED = {"plan_poses": ("plan", "plan"), "simulate_campaign": ("simulate", "simulate")}

__all__ = sorted([*_LAZY, *_RENAMED])


def __getattr__(name):
    import importlib

    if name in _LAZY or name in _RENAMED:
        module, attr = _RENAMED.get(name, (_LAZY.get(name), name))
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'assemblers.calibration' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_RENAMED))
