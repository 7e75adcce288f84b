"""The dynamic PyBullet model of the Assembler (the physics check, :mod:`.physics`, drives it).

The model built by :class:`PhysicsModel` (all bodies in PyBullet's ``createMultiBody``; no
collision shapes, so nothing but the joints couples the bodies):

* the mount (base plate of platform 1) is fixed at ``T_mount``;
* plate body i is the top plate of platform i, rigidly joined through the interface spacer to the
  base plate of platform i+1 (one rigid body, frame = top frame i); the last one also
  carries the tool and the **payload**, a point mass at the tool point (default 0.5 kg);
* each of the 6N legs is a two-link multibody: the housing (base link, origin at the base joint,
  z along the leg) and the rod (child link, origin at the top joint), joined by a **prismatic
  joint** along z whose position *is* the leg length; it is driven by a position-controlled motor
  (``POSITION_CONTROL``, force limit ``motor_force_n``);
* both ends of every leg are closed by ball joints: ``p.createConstraint(..., JOINT_POINT2POINT)``
  from the housing's base end to the lower plate and from the rod's tip to the upper plate;
* gravity is on (-z world, 9.81 m/s^2).

The only inputs are the 6N commanded leg lengths.  By default the bodies start at the *home* pose
and the legs are ramped from their home lengths to the commanded ones (``start="home"``), so the
simulation itself carries the stack to the pose; ``start="pose"`` starts the bodies at the
kinematic pose instead.  After settling, every plate's pose is read back from the simulation
(``p.getBasePositionAndOrientation``) and compared with the kinematic model.

Solver: by default PyBullet's direct MLCP solver (``CONSTRAINT_SOLVER_LCP_DANTZIG``), which solves
the closed chains' constraint impulses exactly: the settled pose then matches the kinematic one to
about 1e-12 m with any payload (rigid bodies and ideal joints have no compliance, so gravity changes
the internal forces, reported as leg forces, not the pose).  The default iterative solver
(``solver="si"``, sequential impulses, ``solver_iterations``) leaves a load-dependent residual that
shrinks with iterations and timestep (0.04-0.14 mm and 0.02-0.17 mrad at the tool with 200
iterations at 1 ms on the default robot with 0.5 kg): a property of the solver, not of the robot.
docs/visualization.md has the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assemblers.geometry.api import (
    inverse_transform,
    matrix_to_quaternion,
    quaternion_to_matrix,
    transform_to_pose,
)
from assemblers.model import Assembler

from .client import pybullet, quiet_stdout
from .scene import stack_pose, z_to_vector_quaternion
from .style import Style, leg_parts, plate_outline, plate_slab


@dataclass(frozen=True)
class PhysicsParams:
    """Settings of the dynamic model (SI units).

    ``payload_kg``: point mass at the tool; ``plate_density``: kg/m^3 of the plates (aluminium),
    whose shape is the drawn one (:class:`.style.Style`); ``housing_kg``, ``rod_kg``: the two
    parts of every leg; ``gravity``: m/s^2 along -z (world); ``timestep_s``: the fixed step;
    ``solver``: "dantzig" (direct, exact) or "si" (iterative, ``solver_iterations``, ``erp``);
    ``motor_force_n``: force limit of each leg's position motor, ``position_gain``,
    ``velocity_gain``: its gains (PyBullet's, dimensionless); ``start``: "home" or "pose" (where the
    bodies start); ``ramp_s``: time over which the leg commands go from the start lengths to the
    targets; ``settle_max_s``: simulated time allowed for settling after the ramp;
    ``settle_speed``: m/s and rad/s below which every plate counts as settled.
    """

    payload_kg: float = 0.5
    plate_density: float = 2700.0
    housing_kg: float = 0.30
    rod_kg: float = 0.10
    gravity: float = 9.81
    timestep_s: float = 1e-3
    solver: str = "dantzig"
    solver_iterations: int = 200
    erp: float = 0.2
    motor_force_n: float = 5000.0
    position_gain: float = 1.0
    velocity_gain: float = 1.0
    start: str = "home"
    ramp_s: float = 0.3
    settle_max_s: float = 3.0
    settle_speed: float = 1e-7

    def __post_init__(self):
        if self.solver not in ("dantzig", "si"):
            raise ValueError(f"solver must be 'dantzig' or 'si', got {self.solver!r}")
        if self.start not in ("home", "pose"):
            raise ValueError(f"start must be 'home' or 'pose', got {self.start!r}")
        for name in ("timestep_s", "plate_density", "housing_kg", "rod_kg", "motor_force_n"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.payload_kg >= 0:
            raise ValueError(f"payload_kg must be >= 0, got {self.payload_kg}")


# ----------------------------------------------------------------------------- mass properties


def _polygon_area_centroid(P) -> tuple[float, np.ndarray]:
    x, y = P[:, 0], P[:, 1]
    x1, y1 = np.roll(x, -1), np.roll(y, -1)
    c = x * y1 - x1 * y
    A = 0.5 * c.sum()
    return abs(A), np.array([((x + x1) * c).sum(), ((y + y1) * c).sum()]) / (6 * A)


@dataclass
class _Mass:
    """A mass with its COM (3,) and inertia (3, 3) about the COM, in some body frame."""

    m: float
    com: np.ndarray
    I: np.ndarray

    def moved(self, T) -> _Mass:
        R = T[:3, :3]
        return _Mass(self.m, R @ self.com + T[:3, 3], R @ self.I @ R.T)


def _combine(parts) -> _Mass:
    m = sum(p.m for p in parts)
    com = sum(p.m * p.com for p in parts) / m
    I = np.zeros((3, 3))
    for p in parts:
        d = p.com - com
        I += p.I + p.m * (d @ d * np.eye(3) - np.outer(d, d))
    return _Mass(m, com, I)


def plate_mass(joints, is_top: bool, style: Style, density: float) -> _Mass:
    """Mass properties of one drawn plate (a slab of its outline), in its plate frame."""
    P = plate_outline(joints, style)
    area, c2 = _polygon_area_centroid(P)
    z0, z1 = plate_slab(joints, is_top, style.plate_thickness)
    h = z1 - z0
    m = density * area * h
    r2 = area / np.pi  # inertia of the disc of equal area
    I = np.diag([m * (r2 / 4 + h * h / 12), m * (r2 / 4 + h * h / 12), m * r2 / 2])
    return _Mass(m, np.array([c2[0], c2[1], 0.5 * (z0 + z1)]), I)


def _point(m: float, p) -> _Mass:
    return _Mass(m, np.asarray(p, dtype=np.float64), np.zeros((3, 3)))


def _inertial_frame(mass: _Mass) -> tuple[np.ndarray, np.ndarray]:
    """(4, 4) body_from_inertial (COM, principal axes) and the (3,) principal moments."""
    w, V = np.linalg.eigh(mass.I)
    if np.linalg.det(V) < 0:
        V[:, 0] = -V[:, 0]
    T = np.eye(4)
    T[:3, :3] = V
    T[:3, 3] = mass.com
    return T, np.maximum(w, 1e-9 * max(mass.m, 1e-9))



# ----------------------------------------------------------------------------- the model


@dataclass
class _Body:
    id: int
    T_body_inertial: np.ndarray  # (4, 4)


class PhysicsModel:
    """The Assembler as a dynamic PyBullet model (see the module docstring).

    ``asm``: the Assembler; ``Q_start``: (6N,) pose the bodies start in (home by default);
    ``params``: :class:`PhysicsParams`; ``style``: the plate shapes (for their masses).
    Connects its own ``p.DIRECT`` client; use as a context manager or call :meth:`close`.
    """

    def __init__(self, asm: Assembler, Q_start=None, params: PhysicsParams | None = None,
                 style: Style | None = None):
        from assemblers.kinematics.api import home_pose, leg_lengths

        self.pb = pb = pybullet()
        self.asm = asm
        self.params = params or PhysicsParams()
        self.style = style or Style()
        self.Q_start = home_pose(asm) if Q_start is None else np.asarray(Q_start, dtype=np.float64)
        with quiet_stdout():  # the MLCP solver announces itself on stdout
            self.cid = pb.connect(pb.DIRECT)
            self._configure()
        self.legs_start = leg_lengths(asm, self.Q_start)
        self.t = 0.0
        self._build()
        self.command(self.legs_start)

    def _configure(self) -> None:
        pb, prm = self.pb, self.params
        kw = dict(fixedTimeStep=prm.timestep_s, numSolverIterations=prm.solver_iterations,
                  erp=prm.erp, solverResidualThreshold=0.0, numSubSteps=0)
        if prm.solver == "dantzig":
            kw["constraintSolverType"] = pb.CONSTRAINT_SOLVER_LCP_DANTZIG
        pb.setPhysicsEngineParameter(physicsClientId=self.cid, **kw)
        pb.setGravity(0.0, 0.0, -prm.gravity, physicsClientId=self.cid)

    # -- construction
    def _make_body(self, mass: _Mass | None, T_world_body, links=None) -> _Body:
        """A body whose frame is at ``T_world_body``; ``mass`` None makes it fixed."""
        pb = self.pb
        if mass is None:
            T_bi, moments, m = np.eye(4), np.zeros(3), 0.0
        else:
            T_bi, moments = _inertial_frame(mass)
            m = mass.m
        bid = pb.createMultiBody(
            baseMass=m, baseCollisionShapeIndex=-1, baseVisualShapeIndex=-1,
            basePosition=[float(x) for x in T_world_body[:3, 3]],
            baseOrientation=[float(x) for x in matrix_to_quaternion(T_world_body[:3, :3])],
            baseInertialFramePosition=[float(x) for x in T_bi[:3, 3]],
            baseInertialFrameOrientation=[float(x) for x in matrix_to_quaternion(T_bi[:3, :3])],
            physicsClientId=self.cid, **(links or {}))
        if m > 0:
            pb.changeDynamics(bid, -1, localInertiaDiagonal=[float(x) for x in moments],
                              linearDamping=0.0, angularDamping=0.0, physicsClientId=self.cid)
        # PyBullet places the inertial frame where asked; re-place it exactly (float64)
        self._reset(bid, T_world_body @ T_bi)
        return _Body(bid, T_bi)

    def _reset(self, bid: int, T_world_inertial) -> None:
        self.pb.resetBasePositionAndOrientation(
            bid, [float(x) for x in T_world_inertial[:3, 3]],
            [float(x) for x in matrix_to_quaternion(T_world_inertial[:3, :3])],
            physicsClientId=self.cid)

    def _build(self) -> None:
        pb, asm, prm, st, cid = self.pb, self.asm, self.params, self.style, self.cid
        n = asm.n_platforms
        sp = stack_pose(asm, self.Q_start)
        self.mount = self._make_body(None, sp.T_base[0])
        # plate bodies: top plate i (+ interface + base plate i+1), frame = top frame i
        self.plates: list[_Body] = []
        self.masses: list[float] = []
        for i, plat in enumerate(asm.platforms):
            parts = [plate_mass(plat.top_joints, True, st, prm.plate_density)]
            if i < n - 1:
                nxt = asm.platforms[i + 1]
                parts.append(plate_mass(nxt.base_joints, False, st, prm.plate_density)
                             .moved(asm.T_interfaces[i]))
            elif prm.payload_kg > 0:
                parts.append(_point(prm.payload_kg, asm.T_tool[:3, 3]))
            mass = _combine(parts)
            self.masses.append(mass.m)
            self.plates.append(self._make_body(mass, sp.T_top[i]))
        # legs
        self.legs: list[list[int]] = []
        self.constraints: list[tuple[int, int]] = []
        self._pivots = []  # per constraint: (bodyA, linkA, pivot in A's inertial frame, same for B)
        for i, plat in enumerate(asm.platforms):
            lp = leg_parts(plat.leg_min, plat.leg_max)
            Lh, Lr = lp.housing, lp.rod
            if i == 0:
                lower, T_lower_base = self.mount, np.eye(4)
            else:
                lower, T_lower_base = self.plates[i - 1], asm.T_interfaces[i - 1]
            upper = self.plates[i]
            row = []
            for k in range(6):
                a, b = sp.base_joints[i, k], sp.top_joints[i, k]
                u = (b - a) / np.linalg.norm(b - a)
                quat = z_to_vector_quaternion(u)
                mh, mr = prm.housing_kg, prm.rod_kg
                rh, rr = st.housing_radius, st.rod_radius
                lid = pb.createMultiBody(
                    baseMass=mh, baseCollisionShapeIndex=-1, baseVisualShapeIndex=-1,
                    basePosition=[float(x) for x in a], baseOrientation=[float(x) for x in quat],
                    baseInertialFramePosition=[0, 0, Lh / 2],
                    linkMasses=[mr], linkCollisionShapeIndices=[-1], linkVisualShapeIndices=[-1],
                    linkPositions=[[0, 0, 0]], linkOrientations=[[0, 0, 0, 1]],
                    linkInertialFramePositions=[[0, 0, -Lr / 2]],
                    linkInertialFrameOrientations=[[0, 0, 0, 1]], linkParentIndices=[0],
                    linkJointTypes=[pb.JOINT_PRISMATIC], linkJointAxis=[[0, 0, 1]],
                    physicsClientId=cid)
                Ih = mh * (3 * rh * rh + Lh * Lh) / 12
                Ir = mr * (3 * rr * rr + Lr * Lr) / 12
                pb.changeDynamics(lid, -1, localInertiaDiagonal=[Ih, Ih, mh * rh * rh / 2],
                                  linearDamping=0.0, angularDamping=0.0, physicsClientId=cid)
                pb.changeDynamics(lid, 0, localInertiaDiagonal=[Ir, Ir, mr * rr * rr / 2],
                                  linearDamping=0.0, angularDamping=0.0, jointDamping=0.0,
                                  physicsClientId=cid)
                pb.resetJointState(lid, 0, float(np.linalg.norm(b - a)), physicsClientId=cid)
                # ball joint at the base end: lower plate <-> housing origin
                p_lower = T_lower_base[:3, :3] @ plat.base_joints[k] + T_lower_base[:3, 3]
                c1 = self._p2p(lower, -1, p_lower, lid, -1, np.array([0.0, 0, -Lh / 2]))
                # ball joint at the top end: rod tip <-> upper plate
                c2 = self._p2p(_Body(lid, np.eye(4)), 0, np.array([0.0, 0, Lr / 2]), upper.id, -1,
                               None, B_body=upper, pB_body=plat.top_joints[k])
                self.constraints.append((c1, c2))
                row.append(lid)
            self.legs.append(row)

    def _p2p(self, A: _Body, linkA: int, pA_body, B: int, linkB: int, pB_inertial, B_body=None,
             pB_body=None) -> int:
        """Ball joint between a point of A (``pA_body`` in A's body frame, or already in the
        link's inertial frame when ``linkA`` >= 0) and a point of B (``pB_inertial`` in B's inertial
        frame, or ``pB_body`` in ``B_body``'s body frame)."""
        pb = self.pb
        if linkA < 0:
            pA = (inverse_transform(A.T_body_inertial) @ np.append(pA_body, 1.0))[:3]
        else:
            pA = np.asarray(pA_body, dtype=np.float64)
        if B_body is not None:
            pB = (inverse_transform(B_body.T_body_inertial) @ np.append(pB_body, 1.0))[:3]
        else:
            pB = np.asarray(pB_inertial, dtype=np.float64)
        c = pb.createConstraint(A.id, linkA, B, linkB, pb.JOINT_POINT2POINT, [0, 0, 0],
                                [float(x) for x in pA], [float(x) for x in pB],
                                physicsClientId=self.cid)
        pb.changeConstraint(c, maxForce=1e7, physicsClientId=self.cid)
        self._pivots.append((A.id, linkA, pA, B, linkB, pB))
        return c

    # -- driving
    def command(self, legs) -> None:
        """Command the leg lengths ``legs`` (N, 6) m (position control, held until changed)."""
        pb, prm = self.pb, self.params
        legs = np.asarray(legs, dtype=np.float64).reshape(self.asm.n_platforms, 6)
        for i, row in enumerate(self.legs):
            for k, lid in enumerate(row):
                pb.setJointMotorControl2(lid, 0, pb.POSITION_CONTROL, targetPosition=float(legs[i, k]),
                                         force=prm.motor_force_n, positionGain=prm.position_gain,
                                         velocityGain=prm.velocity_gain, physicsClientId=self.cid)
        self.legs_command = legs

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            self.pb.stepSimulation(physicsClientId=self.cid)
        self.t += n * self.params.timestep_s

    def max_speed(self) -> float:
        """Largest linear (m/s) or angular (rad/s) speed of any plate."""
        v = 0.0
        for b in self.plates:
            lin, ang = self.pb.getBaseVelocity(b.id, physicsClientId=self.cid)
            v = max(v, float(np.linalg.norm(lin)), float(np.linalg.norm(ang)))
        return v

    def move_to(self, legs) -> dict:
        """Ramp the leg commands linearly from the current command to ``legs`` (N, 6) m over
        ``ramp_s``, then settle: step until every plate is slower than ``settle_speed`` (checked
        every 50 steps, at least 0.1 s after the ramp) or ``settle_max_s`` has passed.
        Returns ``{"ramp_s", "settle_s", "settled", "final_speed"}``."""
        prm = self.params
        legs = np.asarray(legs, dtype=np.float64).reshape(self.asm.n_platforms, 6)
        L0 = self.legs_command
        n_ramp = int(round(prm.ramp_s / prm.timestep_s))
        for s in range(1, n_ramp + 1):
            self.command(L0 + (legs - L0) * (s / n_ramp))
            self.step()
        self.command(legs)
        t0 = self.t
        block = 50
        settled = False
        while self.t - t0 < prm.settle_max_s:
            self.step(block)
            if self.t - t0 >= 0.1 and self.max_speed() < prm.settle_speed:
                settled = True
                break
        return {"ramp_s": n_ramp * prm.timestep_s, "settle_s": self.t - t0, "settled": settled,
                "final_speed": self.max_speed()}

    # -- reading back
    def _body_T(self, b: _Body) -> np.ndarray:
        pos, quat = self.pb.getBasePositionAndOrientation(b.id, physicsClientId=self.cid)
        T = np.eye(4)
        T[:3, :3] = quaternion_to_matrix(quat)
        T[:3, 3] = pos
        return T @ inverse_transform(b.T_body_inertial)

    def top_frames(self) -> np.ndarray:
        """(N, 4, 4) world_from_top_i as simulated."""
        return np.stack([self._body_T(b) for b in self.plates])

    def tool_pose(self) -> np.ndarray:
        """(4, 4) world_from_tool as simulated (last plate body's pose times T_tool)."""
        return self._body_T(self.plates[-1]) @ self.asm.T_tool

    def simulated_Q(self) -> np.ndarray:
        """(6N,) stack pose recovered from the simulated plate frames."""
        T_top = self.top_frames()
        A = self._body_T(self.mount)
        qs = []
        for i in range(self.asm.n_platforms):
            qs.append(transform_to_pose(inverse_transform(A) @ T_top[i]))
            A = T_top[i] @ self.asm.arrays.T_after[i]
        return np.concatenate(qs)

    def leg_positions(self) -> np.ndarray:
        """(N, 6) m: the prismatic joints' positions (the simulated leg lengths)."""
        return np.array([[self.pb.getJointState(lid, 0, physicsClientId=self.cid)[0] for lid in row]
                         for row in self.legs])

    def leg_forces(self) -> np.ndarray:
        """(N, 6) N: axial force of every leg's motor (positive pushes the plates apart)."""
        return np.array([[self.pb.getJointState(lid, 0, physicsClientId=self.cid)[3] for lid in row]
                         for row in self.legs])

    def mount_force(self) -> np.ndarray:
        """(3,) N, world frame: sum of the constraint forces of platform 1's base ball joints, as
        PyBullet reports them (at rest: +z, the weight of everything the mount carries)."""
        F = np.zeros(3)
        for c1, _ in self.constraints[:6]:
            F += np.asarray(self.pb.getConstraintState(c1, physicsClientId=self.cid))
        return F

    def joint_gaps(self) -> float:
        """Largest distance (m) between the two halves of any ball joint (closure error)."""
        pb = self.pb
        gap = 0.0

        def world(bid, link, p):
            if link < 0:
                pos, quat = pb.getBasePositionAndOrientation(bid, physicsClientId=self.cid)
            else:
                st = pb.getLinkState(bid, link, computeForwardKinematics=1, physicsClientId=self.cid)
                pos, quat = st[0], st[1]
            return np.asarray(pos) + quaternion_to_matrix(quat) @ p

        for a, la, pa, b, lb, pbv in self._pivots:
            gap = max(gap, float(np.linalg.norm(world(a, la, pa) - world(b, lb, pbv))))
        return gap

    def close(self) -> None:
        if self.cid is not None:
            try:
                self.pb.disconnect(physicsClientId=self.cid)
            except Exception:  # noqa: BLE001 - already gone
                pass
            self.cid = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
