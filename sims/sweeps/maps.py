"""Maps and summary of a sweep (:mod:`sims.sweeps`): reachability and sensitivity heat maps
(slices through the workspace; for configs with a mass model also the largest leg force), the
distribution of the cost reduction against the ``even`` baseline, and a summary table
(``summary.md``, ``summary.json``).

Slices: in the x-y plane at the z level nearest the middle of the swept z range, and in the x-z
plane at the middle y level (for random sweeps: a slab, the middle third of the third axis).
A cell aggregates every target at that position: its orientations (and, for random sweeps, the
positions inside the cell).  Reachability = the fraction of a cell's targets reached; sensitivity
= the median cost of the reached ones.  Positions are plotted as offsets from the home tool
position (``frame = home``) or in the world frame, in mm.

matplotlib (Agg) is imported only when maps are drawn.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .driver import last_run
from .output import load_results, read_manifest
from .spec import SweepError, box_poses, schema_of
from .storage import regular_or_absent, write_bytes_atomic

QUANTILES = (0.05, 0.5, 0.95)
PLANES = (("x", "y", "z"), ("x", "z", "y"))  # (horizontal, vertical, sliced) axes


def _q(values, qs=QUANTILES) -> list:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return [float(np.quantile(v, q)) for q in qs] if v.size else [math.nan] * len(qs)


def _col(table, name) -> np.ndarray:
    """A column as float64 (nulls -> NaN) or as-is for strings/bools."""
    c = table.column(name)
    if c.type in ("string", "large_string") or str(c.type) in ("string", "large_string"):
        return np.asarray(c.to_pylist(), dtype=object)
    if str(c.type) == "bool":
        return np.asarray(c.to_numpy(zero_copy_only=False), dtype=bool)
    return np.asarray(c.to_numpy(zero_copy_only=False), dtype=np.float64)


def summarize(table, last_run: dict | None = None) -> dict:
    """Per-config statistics of a results table (pyarrow).

    Per config: ``targets``, ``reached`` (count) and ``reached_frac``; ``cost_q`` /
    ``baseline_cost_q`` / ``reduction_q``: the 5th, 50th and 95th percentiles over reached
    targets (reduction = 1 - cost / baseline cost, a fraction); ``reduction_mean``,
    ``improved_frac`` (reduction > 1e-6); ``solve_ms_mean``, ``solve_ms_q``; with Monte Carlo,
    ``mc_rms_weighted_q`` (m) and ``mc_reduction_q``.  ``run``: the last run's throughput
    (targets/s), executor and workers (from ``runs.jsonl``).
    """
    cfg = _col(table, "config")
    ok = _col(table, "success")
    out = {"configs": {}, "rows": int(table.num_rows)}
    names = list(dict.fromkeys(cfg.tolist()))
    for name in names:
        m = cfg == name
        r = m & ok
        red = _col(table, "reduction")[r]
        d = {
            "targets": int(m.sum()), "reached": int(r.sum()),
            "reached_frac": float(r.sum() / m.sum()) if m.sum() else math.nan,
            "criterion": str(_col(table, "criterion")[m][0]) if m.any() else "",
            "cost_q": _q(_col(table, "cost")[r]),
            "baseline_cost_q": _q(_col(table, "baseline_cost")[r]),
            "reduction_q": _q(red),
            "reduction_mean": float(np.nanmean(red)) if np.isfinite(red).any() else math.nan,
            "improved_frac": (float(np.mean(red[np.isfinite(red)] > 1e-6))
                              if np.isfinite(red).any() else math.nan),
            "solve_ms_mean": float(np.mean(_col(table, "time_s")[m]) * 1e3) if m.any() else math.nan,
            "solve_ms_q": [x * 1e3 for x in _q(_col(table, "time_s")[m])],
        }
        reasons = {}
        for why in _col(table, "reason")[m & ~ok]:
            reasons[why] = reasons.get(why, 0) + 1
        d["unreached_reasons"] = reasons
        if "mc_rms_weighted_m" in table.column_names:
            d["mc_rms_weighted_q"] = _q(_col(table, "mc_rms_weighted_m")[r])
            d["mc_reduction_q"] = _q(_col(table, "mc_reduction")[r])
        out["configs"][name] = d
    if last_run:
        out["run"] = {k: last_run.get(k) for k in ("throughput_per_s", "executor", "workers",
                                                   "new", "wall_s", "batch")}
    return out


def _f(x, fmt="{:.4g}") -> str:
    return "n/a" if x is None or not math.isfinite(x) else fmt.format(x)


def _pct(x) -> str:
    return _f(None if x is None else 100 * x, "{:.2f} %")


def summary_table(summary: dict) -> str:
    """The summary as a Markdown table (one row per config) plus the throughput line."""
    head = ["config", "criterion", "targets", "reached", "cost p5 / p50 / p95",
            "even p50", "reduction p5 / p50 / p95", "improved", "solve ms (mean)"]
    mc = any("mc_rms_weighted_q" in d for d in summary["configs"].values())
    if mc:
        head += ["MC RMS p50 [mm]", "MC reduction p50"]
    rows = []
    for name, d in summary["configs"].items():
        row = [name, d["criterion"], str(d["targets"]),
               f"{d['reached']} ({_pct(d['reached_frac'])})",
               " / ".join(_f(x) for x in d["cost_q"]), _f(d["baseline_cost_q"][1]),
               " / ".join(_pct(x) for x in d["reduction_q"]), _pct(d["improved_frac"]),
               _f(d["solve_ms_mean"], "{:.1f}")]
        if mc:
            row += [_f(d.get("mc_rms_weighted_q", [math.nan] * 3)[1] * 1e3),
                    _pct(d.get("mc_reduction_q", [math.nan] * 3)[1])]
        rows.append(row)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    run = summary.get("run")
    if run and run.get("throughput_per_s"):
        lines.append("")
        lines.append(f"throughput of the last run: {run['throughput_per_s']:.3g} targets/s "
                     f"({run['new']} targets in {run['wall_s']:.1f} s, {run['executor']}, "
                     f"{run['workers']} worker(s))")
    for name, d in summary["configs"].items():
        if d["unreached_reasons"]:
            why = ", ".join(f"{k} {v}" for k, v in sorted(d["unreached_reasons"].items()))
            lines.append(f"{name}: not reached: {why}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- maps


def _positions(table, manifest: dict) -> np.ndarray:
    """(n, 3) plotted positions, m: the swept offsets from the home tool position (``frame =
    home``) or the world positions of the targets."""
    spec = manifest["spec"]
    if spec["frame"] == "home":
        return box_poses(spec, _col(table, "target").astype(np.int64))[:, :3]
    return np.stack([_col(table, a) for a in ("x", "y", "z")], axis=1)


def _cells(values: np.ndarray, grid: bool, nbins: int):
    """Cell edges along one axis: grid levels (midpoints between them) or ``nbins`` bins."""
    lv = np.unique(np.round(values, 12))
    if grid or lv.size <= 1:
        if lv.size == 1:  # a fixed axis: one cell 10 mm wide
            return np.array([lv[0] - 5e-3, lv[0] + 5e-3]), lv
        mids = 0.5 * (lv[1:] + lv[:-1])
        return np.concatenate([[2 * lv[0] - mids[0]], mids, [2 * lv[-1] - mids[-1]]]), lv
    edges = np.linspace(lv[0], lv[-1], nbins + 1)
    return edges, 0.5 * (edges[1:] + edges[:-1])


def slice_grid(pos: np.ndarray, values: np.ndarray, plane, grid: bool, agg, use=None):
    """Aggregate ``values`` (n,) over cells of one plane.

    ``pos`` (n, 3) m; ``plane`` = (h, v, s) axis names; ``agg``: a statistic of
    ``scipy.stats.binned_statistic_2d`` ("mean", "median", ... or a callable on a cell's
    values); ``use`` (n,) bool: the targets whose values count (default all; the cells are laid
    out over every target, so a cell with none in use is NaN).  Returns ``(edges_h, edges_v,
    image (nv, nh), level)`` with ``level`` the sliced axis' value (m) or its slab as (lo, hi);
    a cell without targets is NaN.
    """
    from scipy.stats import binned_statistic_2d

    k = {"x": 0, "y": 1, "z": 2}
    h, v, s = (k[a] for a in plane)
    sv = np.round(pos[:, s], 12)
    lv = np.unique(sv)
    if grid or lv.size <= 1:
        level = lv[np.argmin(np.abs(lv - 0.5 * (lv[0] + lv[-1])))]
        sel = sv == level
    else:
        span = lv[-1] - lv[0]
        lo, hi = lv[0] + span / 3, lv[-1] - span / 3
        sel = (sv >= lo) & (sv <= hi)
        level = (lo, hi)
    n = int(sel.sum())
    nb = int(np.clip(round(math.sqrt(max(n, 1) / 4)), 3, 40))
    eh, _ = _cells(pos[:, h], grid, nb)
    ev, _ = _cells(pos[:, v], grid, nb)
    img = np.full((len(ev) - 1, len(eh) - 1), np.nan)
    if use is not None:
        sel = sel & use
    if sel.any():  # the edges span every position: no target falls outside (last bin closed)
        img = binned_statistic_2d(pos[sel, h], pos[sel, v], values[sel], statistic=agg,
                                  bins=[eh, ev]).statistic.T
    return eh, ev, img, level


def _planes(pos: np.ndarray) -> list[tuple[str, str, str]]:
    """The slices to draw: x-y and x-z when x, y and z all vary; the plane of the two that
    vary (the third is fixed); with one varying axis, that axis against a fixed one."""
    names = ("x", "y", "z")
    varied = [a for i, a in enumerate(names) if np.unique(np.round(pos[:, i], 12)).size > 1]
    if len(varied) == 3:
        return list(PLANES)
    if len(varied) == 2:
        return [(varied[0], varied[1], next(a for a in names if a not in varied))]
    h = varied[0] if varied else "x"
    v = "z" if h != "z" else "x"
    return [(h, v, next(a for a in names if a not in (h, v)))]


def draw_maps(table, manifest: dict, out_dir) -> list[Path]:
    """Write ``reachability.png``, ``sensitivity.png``, ``reduction_hist.png`` and, for configs
    with a mass model, ``leg_force.png`` into ``out_dir`` (created); returns their paths."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = manifest["spec"]
    grid = spec["mode"] == "grid"
    frame = "offset from home" if spec["frame"] == "home" else "world"
    pos = _positions(table, manifest)
    cfg = _col(table, "config")
    ok = _col(table, "success")
    cost = np.where(ok, _col(table, "cost"), np.nan)
    cost_ok = np.isfinite(cost)  # the sensitivity map: the median over reached targets
    names = list(dict.fromkeys(cfg.tolist()))
    paths = []
    planes = _planes(pos)
    maps = [("reachability.png", ok.astype(float), None, "mean", "fraction reached", "viridis",
             (0.0, 1.0)),
            ("sensitivity.png", cost, cost_ok, "median", "median cost (reached)", "magma", None)]
    if "max_leg_force_N" in table.column_names:  # a config with a mass model: the leg forces
        force = np.where(ok, _col(table, "max_leg_force_N").astype(float), np.nan)
        if np.isfinite(force).any():
            maps.append(("leg_force.png", force, np.isfinite(force), "median",
                         "median largest |leg force| [N] (reached)", "cividis", None))
    titles = {"reachability.png": "reachability (over the swept orientations; grey: no target)",
              "sensitivity.png": "sensitivity: cost of the least-sensitive pose (grey: no "
                                 "target reached in the cell)",
              "leg_force.png": "the largest leg force at the solved pose (docs/statics.md; grey: "
                               "no target reached in the cell)"}
    for fname, values, use, agg, label, cmap, vlim in maps:
        fig, axes = plt.subplots(len(names), len(planes), figsize=(5 * len(planes) + 0.5,
                                                                   4.2 * len(names)),
                                 squeeze=False)
        cm = plt.get_cmap(cmap).with_extremes(bad="lightgrey")
        for r, name in enumerate(names):
            m = cfg == name
            crit = str(_col(table, "criterion")[m][0])
            for c, plane in enumerate(planes):
                ax = axes[r, c]
                eh, ev, img, level = slice_grid(pos[m], values[m], plane, grid, agg,
                                                None if use is None else use[m])
                kw = {"vmin": vlim[0], "vmax": vlim[1]} if vlim else {}
                im = ax.pcolormesh(eh * 1e3, ev * 1e3, np.ma.masked_invalid(img), cmap=cm,
                                   shading="flat", **kw)
                lv = (f"{plane[2]} = {level * 1e3:.1f} mm" if np.ndim(level) == 0 else
                      f"{plane[2]} in [{level[0] * 1e3:.1f}, {level[1] * 1e3:.1f}] mm")
                ax.set_title(f"{name}: {plane[0]}-{plane[1]} at {lv}", fontsize=10)
                ax.set_xlabel(f"{plane[0]} [mm] ({frame})")
                ax.set_ylabel(f"{plane[1]} [mm]")
                ax.set_aspect("equal")
                cb = fig.colorbar(im, ax=ax)
                cb.set_label(label if fname == "reachability.png" else f"{label}, {crit}")
        fig.suptitle(titles[fname])
        fig.tight_layout()
        paths.append(_save(fig, out_dir / fname, plt))
    # distribution of the reduction against the even baseline
    mc = "mc_reduction" in table.column_names
    fig, axes = plt.subplots(1, 2 if mc else 1, figsize=(11 if mc else 6.5, 4.2), squeeze=False)
    for c, (col, title) in enumerate([("reduction", "cost reduction vs even [%]"),
                                      ("mc_reduction", "Monte Carlo RMS reduction vs even [%]")]
                                     [:2 if mc else 1]):
        ax = axes[0, c]
        for name in names:
            v = _col(table, col)[(cfg == name) & ok]
            v = v[np.isfinite(v)] * 100
            if v.size:
                ax.hist(v, bins=min(50, max(5, int(math.sqrt(v.size)))), alpha=0.6,
                        label=f"{name} (n = {v.size}, median {np.median(v):.2f} %)")
        ax.set_xlabel(title)
        ax.set_ylabel("targets")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle("distribution of the reduction against the even baseline (reached targets)")
    fig.tight_layout()
    paths.append(_save(fig, out_dir / "reduction_hist.png", plt))
    return paths


def _save(fig, path: Path, plt) -> Path:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return write_bytes_atomic(path, buf.getvalue(), path.parent.parent)


def finite_or_null(x):
    """``x`` (nested dicts, lists, numbers) with every NaN / inf float as None: JSON's null
    (``json.dumps(allow_nan=False)`` accepts the result)."""
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, dict):
        return {k: finite_or_null(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [finite_or_null(v) for v in x]
    return x


def report(out, maps: bool = True) -> dict:
    """Summary (and maps) of the sweep in directory ``out`` from what is on disk.

    Writes ``summary.md``, ``summary.json`` and, with ``maps``, ``maps/*.png``.  Returns a
    JSON-ready dict: ``summary`` (see :func:`summarize`), ``table`` (Markdown), ``results``
    (the merged results file, or None while incomplete), ``complete``, ``rows``, ``files``.
    """
    d = Path(out)
    manifest = read_manifest(d)
    fmt = manifest.get("format", "parquet")
    try:
        table = load_results(d)
    except SweepError:  # nothing finished yet (every target raised): an empty summary
        table = schema_of({k: v["type"] for k, v in manifest["columns"].items()},
                          fmt).empty_table()
    res = d / f"results.{fmt}"
    last = last_run(d)
    summary = finite_or_null(summarize(table, last))
    text = summary_table(summary)
    n_total = manifest["spec"]["n_total"]
    head = (f"# Sweep summary\n\n{table.num_rows} of {n_total} targets"
            f"{'' if table.num_rows == n_total else ' (incomplete: rerun to resume)'}; "
            f"frame {manifest['spec']['frame']}, {manifest['spec']['mode']}, seed "
            f"{manifest['spec']['seed']}.\nReduction = 1 - cost / cost of the even baseline "
            f"(positive: the least-sensitive pose is better).\n\n")
    files = [write_bytes_atomic(d / "summary.md", (head + text + "\n").encode(), d),
             write_bytes_atomic(d / "summary.json",
                                (json.dumps(summary, indent=2) + "\n").encode(), d)]
    if maps and table.num_rows:
        files += draw_maps(table, manifest, d / "maps")
    complete = table.num_rows == n_total
    return {"summary": summary, "table": text,
            "results": str(res) if complete and regular_or_absent(res, d) else None,
            "complete": complete, "rows": int(table.num_rows),
            "files": [str(p) for p in files]}
