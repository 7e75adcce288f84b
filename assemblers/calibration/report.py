"""The calibration report: ``report.md``, ``result.json`` and three figures (residuals per row
before and after, estimates with error bars, the identifiability spectrum), written together
into a folder through :func:`assemblers.files.staged_dir` (all files or none)."""

from __future__ import annotations

import numpy as np

from .. import files
from .fit import CalibrationResult

FIGURES = ("residuals.png", "parameters.png", "spectrum.png")


def _um(x: float) -> str:
    return f"{x * 1e6:.2f}"


def markdown(res: CalibrationResult, holdout: dict | None = None) -> str:
    """The report's text (markdown)."""
    s = res.summary()
    b, a = s["before"], s["after"]
    ident = res.identifiability
    lines = [f"# Calibration: {res.assembler.name}", "",
             f"Measurements: `{res.options['source']}`, {s['n_rows']} poses, "
             f"{s['n_equations']} equations. Fitted families: {', '.join(res.options['families'])}; "
             f"loss `{res.options['loss']}`, method `{res.options['method']}`. "
             f"{'Converged' if res.success else 'NOT converged'}: {res.message} "
             f"({res.nfev} evaluations, {res.time_s:.2f} s).", "",
             "## Residuals (tool, RMS over the rows)", "",
             "| | position um | rotation urad | whitened (per component) |", "|---|---|---|---|",
             f"| before (nominal) | {_um(b['position_m'])} | {_um(b['rotation_rad'])} | "
             f"{b['whitened']:.3g} |",
             f"| after | {_um(a['position_m'])} | {_um(a['rotation_rad'])} | "
             f"{a['whitened']:.3g} |", "",
             f"A-posteriori variance factor (chi-square per degree of freedom): "
             f"{res.variance_factor:.3f} (1 when the stated standard deviations are right; the "
             "standard deviations below include it).", ""]
    if holdout:
        lines += ["## Held-out poses (against the given true model)", "",
                  "| | position RMS um | rotation RMS urad |", "|---|---|---|",
                  f"| nominal | {_um(holdout['before'][0])} | {_um(holdout['before'][1])} |",
                  f"| calibrated | {_um(holdout['after'][0])} | {_um(holdout['after'][1])} |",
                  "", f"{holdout['n']} random poses inside the limits.", ""]
    lines += ["## Identifiability", "",
              f"{ident.rank} of {ident.columns.size} fitted parameters are estimated "
              f"(generic poses identify {res.generic_rank}); the other "
              f"{len(res.unidentifiable)} are combinations of them that tool measurements "
              "cannot tell apart (a plate's joints moved together versus its pose, the mount "
              "versus the base joints, the tool versus the top joints) and are fixed at their "
              "nominal values. Spectrum: `spectrum.png` (singular values of the scaled Jacobian; "
              "threshold "
              f"{ident.rcond:g} of the largest).", "",
              "| fixed at nominal | absorbed by (d estimated / d fixed) |", "|---|---|"]
    for u in res.unidentifiable:
        lines.append(f"| {u['name']} | " + ", ".join(f"{n} ({c:+.3g})" for n, c in u["absorbed_by"])
                     + " |")
    lines += ["", "## Estimates", "",
              "| parameter | nominal | estimate | change | std | unit |", "|---|---|---|---|---|---|"]
    for p in s["parameters"]:
        scale, unit = (1e3, "mm") if p["unit"] == "m" else (1e3, "mrad") if p["unit"] == "rad" \
            else (1.0, "1")
        lines.append(f"| {p['name']} | {p['nominal']:.9g} | {p['estimate']:.9g} | "
                     f"{(p['estimate'] - p['nominal']) * scale:+.4f} | {p['std'] * scale:.4f} | "
                     f"{unit} |")
    lines += ["", "Changes and standard deviations in mm, mrad or 1 (scales). Figures: "
              "`residuals.png`, `parameters.png`, `spectrum.png`; all numbers: `result.json`.", ""]
    return "\n".join(lines)


def _figures(res: CalibrationResult, folder) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = np.arange(res.before.position.shape[0])
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for k, (what, unit) in enumerate((("position", "um"), ("rotation", "urad"))):
        ax[k].semilogy(rows, getattr(res.before, what)[:, 0] * 1e6, "o", ms=3, label="before")
        ax[k].semilogy(rows, np.maximum(getattr(res.after, what)[:, 0], 1e-12) * 1e6, "o", ms=3,
                       label="after")
        ax[k].set_xlabel("row")
        ax[k].set_ylabel(f"tool {what} error [{unit}]")
        ax[k].legend()
    fig.tight_layout()
    fig.savefig(folder / "residuals.png", dpi=100)
    plt.close(fig)

    est = res.estimated
    change = (res.estimate[est] - res.nominal[est])
    std = res.std[est]
    fig, ax = plt.subplots(figsize=(max(8, est.size * 0.06), 4))
    scale = np.where([res.names[j].endswith(".scale") for j in est], 1.0, 1e3)
    ax.errorbar(np.arange(est.size), change * scale, yerr=3 * std * scale, fmt=".", ms=3,
                elinewidth=0.8)
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_xlabel("estimated parameter (order of the QR)")
    ax.set_ylabel("change from nominal [mm, mrad]")
    ax.set_title("estimates with 3-std error bars (scales unitless)")
    fig.tight_layout()
    fig.savefig(folder / "parameters.png", dpi=100)
    plt.close(fig)

    sv = res.identifiability.singular_values
    fig, ax = plt.subplots(figsize=(7, 4))
    if sv.size:
        ax.semilogy(np.arange(sv.size), np.maximum(sv / sv[0], 1e-18), ".")
        ax.axhline(res.identifiability.rcond, color="r", lw=0.8, label="threshold (QR pivots)")
        ax.axvline(res.identifiability.rank - 0.5, color="k", lw=0.5, ls=":",
                   label=f"rank {res.identifiability.rank}")
        ax.legend()
    ax.set_xlabel("index")
    ax.set_ylabel("singular value / largest")
    ax.set_title("identifiability spectrum (scaled Jacobian)")
    fig.tight_layout()
    fig.savefig(folder / "spectrum.png", dpi=100)
    plt.close(fig)


def write_report(res: CalibrationResult, out_dir, holdout: dict | None = None,
                 what: str = "--report") -> None:
    """Write ``report.md``, ``result.json`` and the figures into ``out_dir`` (together)."""
    with files.staged_dir(out_dir, what) as tmp:
        (tmp / "report.md").write_text(markdown(res, holdout), encoding="utf-8")
        doc = res.summary()
        doc["rows"] = {"before": {"position_m": res.before.position, "rotation_rad":
                                  res.before.rotation, "whitened": res.before.whitened},
                       "after": {"position_m": res.after.position, "rotation_rad":
                                 res.after.rotation, "whitened": res.after.whitened},
                       "frames": list(res.after.frames)}
        doc["spectrum"] = res.identifiability.singular_values
        if holdout:
            doc["holdout"] = holdout
        (tmp / "result.json").write_text(files.dumps_json(doc, 1) + "\n", encoding="utf-8")
        _figures(res, tmp)
