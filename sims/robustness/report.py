"""Robustness report: ``report.md``, ``stats.json`` and PNG figures for a :class:`StudyResult`.

:func:`write_report` writes everything into a fresh temporary directory beside ``out_dir`` and
moves the files into place only when all of them were written (:mod:`assemblers.files`), so a
failure never leaves a half-written report.  matplotlib (Agg backend) is imported only here,
when figures are drawn.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .stats import HIST_RESOLUTION, hist_edges
from .study import METRICS, StudyResult

# ----------------------------------------------------------------------------- units and text


def _unit(values, kind: str):
    """(scale, name) so that typical ``values`` (m or rad) read as 0.1 .. 1000."""
    v = np.asarray([x for x in np.ravel(values) if np.isfinite(x) and x > 0])
    ref = float(np.median(v)) if v.size else 1e-3
    base = "m" if kind == "position" else "rad"
    for scale, prefix in ((1.0, ""), (1e3, "m"), (1e6, "µ"), (1e9, "n")):
        if ref * scale >= 0.1:
            return scale, prefix + base
    return 1e9, "n" + base


def _fmt(x: float, digits: int = 4) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:.{digits}g}"


def _pct(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x * 100:+.2f} %"


def summary_rows(study: StudyResult):
    """(headers, rows) of the per-pose table (strings), positions in mm-like units chosen from
    the data."""
    ps, pu = _unit([p.stats.rms_position for p in study.poses], "position")
    rs, ru = _unit([p.stats.rms_rotation for p in study.poses], "rotation")
    headers = ["pose", f"cost ({study.criterion})", f"RMS weighted [{pu}]",
               f"1st-order [{pu}]", f"RMS pos [{pu}]", f"p99 pos [{pu}]", f"RMS rot [{ru}]",
               f"p99 rot [{ru}]", "vs optimal"]
    rows = []
    for p in study.poses:
        s = p.stats
        red = "" if p is study.optimal else _pct(study.reduction(p.label))
        rows.append([p.label, f"{p.cost:.6g}", _fmt(s.rms_weighted * ps),
                     _fmt(p.predicted_rms * ps), _fmt(s.rms_position * ps),
                     _fmt(s.p99_position * ps), _fmt(s.rms_rotation * rs),
                     _fmt(s.p99_rotation * rs), red])
    return headers, rows


def text_table(headers, rows) -> str:
    """A plain right-aligned text table."""
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(x) for h, x in zip(headers, w)), "  ".join("-" * x for x in w)]
    lines += ["  ".join(c.rjust(x) for c, x in zip(r, w)) for r in rows]
    return "\n".join(lines)


def _md_table(headers, rows) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" for _ in headers) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def terminal_summary(study: StudyResult) -> str:
    """The short text printed by ``assemblers robustness``."""
    tp = study.target_pose
    head = (f"robustness: {study.config} (N = {study.n_platforms}), target x={tp[0]:+.4f} "
            f"y={tp[1]:+.4f} z={tp[2]:+.4f} m roll={tp[3]:+.4f} pitch={tp[4]:+.4f} "
            f"yaw={tp[5]:+.4f} rad\n"
            f"disturbance: {study.disturbance.describe()}; {study.n_samples:,} samples per pose, "
            f"seed {study.seed}; {study.time_s:.1f} s")
    h, r = summary_rows(study)
    lines = [head, text_table(h, r)]
    for b in ("even", "nearest"):
        try:
            study.pose(b)
        except KeyError:
            continue
        lines.append(f"{study.criterion} vs {b}: RMS weighted {_pct(study.reduction(b))}, "
                     f"p99 position {_pct(study.reduction(b, 'p99_position'))}, "
                     f"p99 rotation {_pct(study.reduction(b, 'p99_rotation'))} "
                     "(positive = lower error at the optimal pose)")
    for k, v in study.skipped.items():
        lines.append(f"skipped {k}: {v}")
    failed = sum(p.stats.n_failed for p in study.poses)
    if failed:
        lines.append(f"warning: {failed} samples had no nearby assembly (Newton failed) and were "
                     "left out")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- figures

_COLORS = {"optimal": "tab:blue", "even": "tab:orange", "nearest": "tab:green"}


def _style(p):
    if p.kind == "optimal":
        return dict(color=_COLORS["optimal"], lw=2.0, zorder=5, label=f"{p.label} (optimal)")
    if p.kind == "baseline":
        return dict(color=_COLORS.get(p.label, "tab:red"), lw=1.6, zorder=4, label=p.label)
    return dict(color="0.55", lw=0.9, alpha=0.7, zorder=2, label=p.label)


def _rebinned(hist, factor=8):
    """Histogram on coarser log bins (``factor`` fine bins each) for display: (edges, counts)."""
    edges = hist_edges()
    nz = np.flatnonzero(hist)
    if nz.size == 0:
        return np.array([0.0, 1.0]), np.zeros(1)
    lo = max(1, (nz[0] // factor) * factor)
    hi = min(hist.size - 1, (nz[-1] // factor + 1) * factor)
    h = hist[lo:hi]
    h = h[: (h.size // factor) * factor].reshape(-1, factor).sum(axis=1)
    e = edges[lo:hi + 1:factor][: h.size + 1]
    return e, h


def _fig_hist(study, which, path, plt):
    scale, unit = _unit([getattr(p.stats, f"rms_{which}") for p in study.poses], which)
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for p in reversed(study.poses):
        h = p.stats.hist_position if which == "position" else p.stats.hist_rotation
        e, c = _rebinned(h)
        width = np.diff(e) * scale
        dens = c / max(c.sum(), 1) / width
        kw = _style(p)
        if p.kind == "random" and p.label != "random 1":
            kw["label"] = None
        elif p.kind == "random":
            kw["label"] = "random feasible poses"
        ax.stairs(dens, e * scale, **kw)
    sym = "|dp|" if which == "position" else "|dθ|"
    ax.set_xlabel(f"{which} error magnitude {sym} [{unit}]")
    ax.set_ylabel(f"probability density [1/{unit}]")
    ax.set_title(f"Tool {which} error, {study.n_samples:,} samples per pose\n"
                 f"{study.disturbance.describe()}", fontsize=10)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], fontsize=8)  # drawn in reverse: optimal on top
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _fig_cdf(study, path, plt):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    for ax, which in zip(axes, ("position", "rotation")):
        scale, unit = _unit([getattr(p.stats, f"rms_{which}") for p in study.poses], which)
        edges = hist_edges()
        for p in reversed(study.poses):
            h = p.stats.hist_position if which == "position" else p.stats.hist_rotation
            nz = np.flatnonzero(h)
            if nz.size == 0:
                continue
            cdf = np.cumsum(h[nz[0]: nz[-1] + 1]) / h.sum()
            x = edges[nz[0] + 1: nz[-1] + 2]
            x = np.where(np.isfinite(x), x, edges[-2]) * scale
            kw = _style(p)
            if p.kind == "random" and p.label != "random 1":
                kw["label"] = None
            elif p.kind == "random":
                kw["label"] = "random feasible poses"
            ax.plot(x, cdf, **kw)
        for q in (0.5, 0.95, 0.99):
            ax.axhline(q, color="0.8", lw=0.8, ls=":")
        sym = "|dp|" if which == "position" else "|dθ|"
        ax.set_xlabel(f"{which} error magnitude {sym} [{unit}]")
        ax.set_ylabel("cumulative probability")
        ax.set_title(f"CDF of the tool {which} error")
        ax.set_ylim(0, 1.01)
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles[::-1], labels[::-1], fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _ellipse(cov2, k):
    """Points of the ellipse x^T cov2^-1 x = k^2 (2 x 200)."""
    w, v = np.linalg.eigh(cov2)
    t = np.linspace(0, 2 * np.pi, 200)
    circ = np.stack([np.cos(t), np.sin(t)])
    return v @ (np.sqrt(np.maximum(w, 0))[:, None] * circ) * k


def _fig_scatter(study, path, plt):
    shown = [p for p in study.poses if p.kind != "random"]
    scale, unit = _unit([p.stats.rms_position for p in study.poses], "position")
    k95 = math.sqrt(-2.0 * math.log(0.05))  # 2-D Gaussian: 95 % inside this Mahalanobis radius
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6))
    names = "xyz"
    for ax, (i, j) in zip(axes, ((0, 1), (0, 2), (1, 2))):
        for p in shown:
            kw = _style(p)
            pts = p.scatter[:, [i, j]] * scale
            ax.scatter(pts[:, 0], pts[:, 1], s=3, alpha=0.25, color=kw["color"], lw=0)
            c2 = p.stats.cov[np.ix_([i, j], [i, j])]
            m = p.stats.mean[[i, j]]
            el = _ellipse(c2, k95)
            ax.plot((m[0] + el[0]) * scale, (m[1] + el[1]) * scale, color=kw["color"],
                    lw=kw["lw"], label=f"{kw['label']}: 95 % ellipse")
        ax.set_xlabel(f"d{names[i]} [{unit}] (world)")
        ax.set_ylabel(f"d{names[j]} [{unit}] (world)")
        ax.set_title(f"position error, {names[i]}{names[j]} projection")
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper left")
    n_pts = shown[0].scatter.shape[0] if shown else 0
    fig.suptitle(f"Tool position errors: {n_pts:,} samples per pose shown; ellipses from the "
                 f"covariance of all {study.n_samples:,}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _fig_cost(study, path, plt):
    scale, unit = _unit([p.stats.rms_weighted for p in study.poses], "position")
    fig, ax = plt.subplots(figsize=(7, 5))
    costs = np.array([p.cost for p in study.poses])
    for p in study.poses:
        kw = _style(p)
        s = p.stats
        # standard error of the RMS from that of the mean square: se / (2 rms)
        err = s.sem_sq_weighted / (2 * s.rms_weighted) * scale if s.rms_weighted > 0 else 0
        lab = kw["label"] if p.kind != "random" or p.label == "random 1" else None
        if p.kind == "random" and p.label == "random 1":
            lab = "random feasible poses"
        ax.errorbar([p.cost], [s.rms_weighted * scale], yerr=[err], fmt="o",
                    color=kw["color"], ms=8 if p.kind != "random" else 5, label=lab,
                    zorder=kw["zorder"], capsize=3)
        if np.isfinite(p.predicted_rms):
            ax.plot([p.cost], [p.predicted_rms * scale], marker="x", color="k", ms=6, ls="",
                    zorder=6, label="first-order prediction" if p is study.optimal else None)
    ax.set_xlabel(f"sensitivity cost ({study.criterion}, config weights)")
    ax.set_ylabel(f"Monte Carlo RMS weighted error sqrt(E|W_out e|²) [{unit}]")
    ax.set_title("Cost vs Monte Carlo error across poses reaching the target\n"
                 "(error bars: ±1 standard error; common random numbers)", fontsize=10)
    if costs.size > 1 and np.ptp(costs) > 0:
        pad = 0.1 * np.ptp(costs)
        ax.set_xlim(costs.min() - pad, costs.max() + pad)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


FIGURES = {
    "hist_position.png": "Histogram (density, log-spaced bins) of the tool position error magnitude",
    "hist_rotation.png": "Histogram of the tool rotation error magnitude",
    "cdf.png": "Cumulative distributions of the position and rotation error magnitudes",
    "scatter_position.png": "Position-error samples projected on the world xy, xz and yz planes, "
                            "with 95 % covariance ellipses",
    "cost_vs_rms.png": "Sensitivity cost vs Monte Carlo RMS weighted error across poses",
}


def draw_figures(study: StudyResult, out_dir) -> list[Path]:
    """Write the PNG figures of :data:`FIGURES` into ``out_dir``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    paths = []
    _fig_hist(study, "position", out / "hist_position.png", plt)
    _fig_hist(study, "rotation", out / "hist_rotation.png", plt)
    _fig_cdf(study, out / "cdf.png", plt)
    _fig_scatter(study, out / "scatter_position.png", plt)
    _fig_cost(study, out / "cost_vs_rms.png", plt)
    paths = [out / name for name in FIGURES]
    return paths


# ----------------------------------------------------------------------------- markdown


def markdown(study: StudyResult, figures: bool = True) -> str:
    """The text of ``report.md``."""
    tp = study.target_pose
    d = study.disturbance
    opt = study.optimal
    h, r = summary_rows(study)
    lines = [
        f"# Robustness report: {study.config}",
        "",
        f"- Assembler: `{study.config}`, N = {study.n_platforms} platforms",
        f"- Target tool pose (world frame): x = {tp[0]:.4f} m, y = {tp[1]:.4f} m, "
        f"z = {tp[2]:.4f} m, roll = {tp[3]:.4f} rad, pitch = {tp[4]:.4f} rad, "
        f"yaw = {tp[5]:.4f} rad",
        f"- Optimized criterion: `{study.criterion}` (weighted Frobenius norm of "
        f"{'J_L' if study.criterion == 'fn_legs' else 'J_Q'}, SPEC)",
        f"- Disturbance: {d.describe()}",
        f"- Monte Carlo: {study.n_samples:,} samples per pose through the exact nonlinear "
        f"kinematics, seed {study.seed}, the same random disturbances at every pose (common "
        f"random numbers); length scale l = {study.length_scale:g} m in "
        "W_out = diag(1, 1, 1, l, l, l)",
        f"- Wall time: {study.time_s:.1f} s",
        "",
        "## Error per pose",
        "",
        _md_table(h, r),
        "",
        "*RMS weighted* is `sqrt(E |W_out e|^2)` for the error twist `e = (dp, dtheta)` (world "
        "frame); *1st-order* is the prediction `|| W_out J W_in ||_F` from the Jacobian at the "
        "pose with the disturbance's standard deviations as `W_in` (n/a for joint errors). "
        "*vs optimal* is the fraction of that pose's RMS weighted error removed by the optimal "
        f"pose. Percentiles come from a streaming histogram with relative resolution "
        f"{HIST_RESOLUTION * 100:.2f} %.",
        "",
        "## Reduction by the optimal pose",
        "",
    ]
    red_h = ["compared with"] + [METRICS[m][2] for m in METRICS]
    red_rows = [[lab] + [_pct(v) for v in vals.values()]
                for lab, vals in study.reductions().items()]
    lines += [_md_table(red_h, red_rows), "",
              "Positive: the optimal pose has the lower error.", ""]
    rand = [p for p in study.poses if p.kind == "random"]
    if rand:
        rr = np.array([study.reduction(p.label) for p in rand])
        lines += [f"Against {len(rand)} random feasible poses reaching the same target, the RMS "
                  f"weighted error is reduced by {rr.mean() * 100:.2f} % on average "
                  f"(from {rr.min() * 100:.2f} % to {rr.max() * 100:.2f} %).", ""]
    ratio = opt.stats.mean_sq_weighted / opt.predicted_mean_sq if opt.predicted_mean_sq > 0 else None
    if ratio is not None and np.isfinite(ratio):
        z = ((opt.stats.mean_sq_weighted - opt.predicted_mean_sq) / opt.stats.sem_sq_weighted
             if opt.stats.sem_sq_weighted > 0 else float("nan"))
        lines += ["## First-order check", "",
                  f"At the optimal pose the Monte Carlo mean squared weighted error is "
                  f"{ratio:.5f} times the first-order value `||W_out J W_in||_F^2` "
                  f"({z:+.1f} standard errors). For small disturbances this ratio tends to 1 "
                  "(SPEC); a departure measures the kinematics' nonlinearity at this "
                  "disturbance size.", ""]
    if study.skipped:
        lines += ["## Skipped", ""] + [f"- {k}: {v}" for k, v in study.skipped.items()] + [""]
    failed = {p.label: p.stats.n_failed for p in study.poses if p.stats.n_failed}
    if failed:
        lines += ["## Samples left out", "",
                  "Newton found no nearby assembly for some perturbed legs/joints; those samples "
                  "are excluded from the statistics: "
                  + ", ".join(f"{k}: {v}" for k, v in failed.items()), ""]
    lines += ["## Poses", "", "| pose | Q (x y z [m] roll pitch yaw [rad] per platform) |",
              "|---|---|"]
    for p in study.poses:
        q = "; ".join(" ".join(f"{v:+.4f}" for v in row) for row in p.Q.reshape(-1, 6))
        lines.append(f"| {p.label} | {q} |")
    lines.append("")
    if figures:
        lines += ["## Figures", ""]
        for name, cap in FIGURES.items():
            lines += [f"### {cap}", "", f"![{cap}]({name})", ""]
    lines += ["Statistics in machine-readable form: `stats.json`.", ""]
    return "\n".join(lines)


def write_report(study: StudyResult, out_dir, *, figures: bool = True) -> list[Path]:
    """Write ``report.md``, ``stats.json`` and (with ``figures``) the PNGs into ``out_dir``
    (created if needed; existing files of the same names are replaced).  All files are written
    to a temporary directory first and moved into place only when every one succeeded
    (:func:`assemblers.files.staged_dir`; nothing but a regular file is replaced).
    Returns the paths written; raises :class:`assemblers.files.FileError`."""
    from assemblers import files

    out = Path(out_dir)
    with files.staged_dir(out) as tmp:
        names = []
        (tmp / "stats.json").write_text(files.dumps_json(study.to_dict(histograms=True), 1))
        names.append("stats.json")
        if figures:
            names += [p.name for p in draw_figures(study, tmp)]
        (tmp / "report.md").write_text(markdown(study, figures))
        names.append("report.md")
    return [out / n for n in names]
