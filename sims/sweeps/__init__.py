"""Sweeps: least-sensitive IK (and optionally a short Monte Carlo) over many tool targets, on
local processes or a Dask cluster, resumable, with reachability and sensitivity maps.

From a command to the code: ``assemblers sweep`` is :mod:`.cli`, which builds a
:class:`SweepSpec` (:mod:`.spec`: the targets, the columns) and calls :func:`run_sweep`
(:mod:`.driver`: one ``concurrent.futures`` loop for every executor), whose tasks are
:func:`evaluate_batch` (:mod:`.workers`); finished tasks become part files of the output
directory (:mod:`.output`, with checksums and atomic writes from :mod:`.storage`), merged into
``results.parquet|csv``; :func:`report` (:mod:`.maps`) draws the maps and the summary.
Layout of the output directory and executors: docs/scaling.md.
"""

from .driver import MAX_BATCH, TASK_S, SweepRun, auto_batch, last_run, run_sweep
from .maps import draw_maps, report, slice_grid, summarize, summary_table
from .output import SweepOutput, load_results
from .spec import (
    AXES,
    COLUMNS,
    FORMATS,
    FRAMES,
    MAX_TARGETS,
    MC_COLUMNS,
    ConfigSource,
    SweepError,
    SweepFailed,
    SweepSpec,
    arrow_schema,
    box_poses,
    columns,
    read_config,
)
from .storage import read_table
from .workers import evaluate_batch, make_pool, target_transforms

__all__ = [
    "AXES", "COLUMNS", "FORMATS", "FRAMES", "MAX_BATCH", "MAX_TARGETS", "MC_COLUMNS", "TASK_S",
    "ConfigSource", "SweepError", "SweepFailed", "SweepOutput", "SweepRun", "SweepSpec",
    "arrow_schema", "auto_batch", "box_poses", "columns", "draw_maps", "evaluate_batch",
    "last_run", "load_results", "make_pool", "read_config", "read_table", "report", "run_sweep",
    "slice_grid", "summarize", "summary_table", "target_transforms",
]
