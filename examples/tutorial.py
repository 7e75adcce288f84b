# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Tutorial: from a config to a report
#
# An *Assembler* is a stack of Stewart platforms: 6 legs each, 6N pose parameters for a tool
# pose of 6, so for N >= 2 many stack poses reach the same target. This notebook walks from a
# config file to a robustness report:
#
# 1. load a config and look at the robot at its home pose;
# 2. kinematics: tool pose, leg lengths, the Jacobian and the sensitivity;
# 3. the least-sensitive IK for a target, against the `even` baseline;
# 4. a Monte Carlo study: does the optimal pose really move the tool less under noise?
#
# Units are SI (m, rad), poses are `(x, y, z, roll, pitch, yaw)`, `T_a_b` maps frame-b points
# into frame a ([conventions](../docs/conventions.md)). This file is the
# [jupytext](https://jupytext.readthedocs.io) twin of `tutorial.ipynb`: edit either, then
# `jupytext --sync examples/tutorial.py`.

# %%
# ruff: noqa: E402  (a notebook imports where it first needs a module)
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import assemblers

SMALL = os.environ.get("ASSEMBLERS_EXAMPLE_SMALL") == "1"  # the test suite runs it small
OUT = Path(os.environ.get("ASSEMBLERS_EXAMPLE_OUT", "examples-out")) / "tutorial"

# %% [markdown]
# ## 1. A config
#
# `load_config` takes a TOML file or the name of a shipped config (`configs/*.toml`); every key
# is described in [docs/config.md](../docs/config.md).

# %%
print(assemblers.shipped_configs())
asm = assemblers.load_config("assembler")
print(f"{asm.name}: {asm.n_platforms} platforms")
for i, p in enumerate(asm.platforms):
    print(f"  platform {i + 1} ({p.name}): legs {p.leg_min:.3f}-{p.leg_max:.3f} m, "
          f"home height {p.home_height:.3f} m")

# %% [markdown]
# ## 2. Kinematics at the home pose
#
# `Q` is the stack pose, (6N,), bottom platform first; the tool pose follows from the chain
# `T_world_tool = T_mount T(q_1) T_iface_1 ... T(q_N) T_tool`.

# %%
Q = assemblers.home_pose(asm)                       # (24,)
T = assemblers.forward_kinematics(asm, Q)           # (4, 4) T_world_tool
L = assemblers.leg_lengths(asm, Q)                  # (4, 6) m
J = assemblers.jacobian(asm, Q, wrt="pose")         # (6, 24): tool twist per pose parameter
print("tool pose:", np.round(assemblers.transform_to_pose(T), 4))
print("legs [m]:\n", np.round(L, 4))
print(f"||J_Q||_F = {np.linalg.norm(J):.4f}, sensitivity (config weights) = "
      f"{assemblers.sensitivity(asm, Q):.4f}")

# %% [markdown]
# The Jacobian is exact (closed form); a central finite difference of the forward kinematics
# agrees to about 1e-8:

# %%
dq = 1e-6
k = 5                                                # yaw of platform 1
Qp, Qm = Q.copy(), Q.copy()
Qp[k] += dq
Qm[k] -= dq
dp = (assemblers.forward_kinematics(asm, Qp)[:3, 3] - assemblers.forward_kinematics(asm, Qm)[:3, 3])
print("finite difference:", np.round(dp / (2 * dq), 6))
print("J_Q column       :", np.round(J[:3, k], 6))

# %% [markdown]
# ## 3. The least-sensitive pose for a target
#
# `solve_ik` minimizes `||W_out J_Q W_in||_F` over every stack pose that puts the tool exactly
# on the target, within every stroke and joint limit, and reports the `even` split (motion
# shared equally by the platforms) as the baseline.

# %%
target = assemblers.pose_to_transform([0.02, 0.01, 1.07, 0.05, 0.0, 0.1])
r = assemblers.solve_ik(asm, target)
print(r.success, r.message)
print(f"cost {r.cost:.4f} vs even {r.baseline_cost:.4f}: {r.reduction * 100:.2f} % lower")
print(f"tool error {r.tool_error[0]:.1e} m, {r.tool_error[1]:.1e} rad; "
      f"largest limit violation {r.max_violation:.1e}")

# %%
even = assemblers.solve_ik(asm, target, criterion="even")
fig, ax = plt.subplots(figsize=(6, 3))
x = np.arange(asm.n_platforms)
ax.bar(x - 0.2, r.legs.mean(axis=1), 0.4, label="least-sensitive (fn)")
ax.bar(x + 0.2, even.legs.mean(axis=1), 0.4, label="even split")
ax.set_xticks(x, [f"platform {i + 1}" for i in x])
ax.set_ylim(0.18, 0.33)
ax.set_ylabel("mean leg length [m]")
ax.legend()
plt.show()

# %% [markdown]
# ## 4. Robustness: a Monte Carlo study
#
# Random errors on every pose parameter (0.1 mm, 0.1 mrad), pushed through the exact nonlinear
# kinematics at the optimal pose, the baselines and random poses reaching the same target.
# `write_report` writes `report.md`, `stats.json` and figures
# ([docs/robustness.md](../docs/robustness.md)).

# %%
from sims.robustness import Disturbance, run_study, terminal_summary, write_report

noise = Disturbance(pose_sigma=[1e-4] * 6)
study = run_study(asm, target, noise, n_samples=2_000 if SMALL else 200_000, seed=0,
                  n_random=2 if SMALL else 5, progress=False)
print(terminal_summary(study))

# %%
paths = write_report(study, OUT)
print("\n".join(str(p) for p in paths))
print((OUT / "report.md").read_text()[:600])

# %% [markdown]
# The same from the command line:
#
# ```
# assemblers robustness --target "0.02 0.01 1.07 0.05 0.0 0.1" --samples 2e5 --out report/
# ```
