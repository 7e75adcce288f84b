"""The PyBullet physics check (sims.viz.physics, sims.viz.dynamics) against the kinematic model
(DIRECT mode, default robot).

Payload: 0.5 kg at the tool (the CLI's default) unless a test says otherwise.
"""

import json

import numpy as np
import pytest

import assemblers as A
from assemblers.cli import main
from sims.viz.dynamics import PhysicsModel, PhysicsParams
from sims.viz.physics import physics_check

PAYLOAD = 0.5


@pytest.fixture(scope="module")
def report(default_asm, near_home):
    """Default settings: direct (Dantzig) solver, bodies start at home, legs ramped to the pose."""
    return physics_check(default_asm, near_home(default_asm, 21),
                         PhysicsParams(payload_kg=PAYLOAD), leg_error=1e-4, seed=1)


def test_settles_on_the_kinematic_pose(report):
    """Within 1 mm and 1 mrad (the requirement); in fact to ~1e-12 with the direct solver."""
    assert report.settle["settled"]
    assert report.within(1e-3, 1e-3)
    assert report.tool_error_m < 1e-9 and report.tool_error_rad < 1e-9
    assert np.all(report.plate_error_m < 1e-9) and np.all(report.plate_error_rad < 1e-9)
    assert report.joint_gap_m < 1e-9 and report.leg_error_m < 1e-9


def test_gravity_and_payload_are_carried(report, default_asm):
    """At rest the mount carries the whole weight (payload included), and the top platform's
    legs carry the payload."""
    W = report.total_mass_kg * report.params.gravity
    np.testing.assert_allclose(report.mount_force_n, [0, 0, W], atol=1e-6 * W)
    assert report.leg_force_n[-1] > PAYLOAD * 9.81 / 6
    assert np.all(np.diff(report.leg_force_n) < 0)  # lower legs carry more


def test_leg_errors_match_the_jacobian(report):
    """Injected leg-length errors (+-0.1 mm on all 24 legs): the simulated tool twist agrees with
    J_L @ dL within 10 % (in fact ~0.1 %, the first-order model's own error), and with the exact
    forward kinematics of the erroneous legs far better."""
    le = report.leg_error
    assert np.all(np.abs(le["dL"]) == 1e-4)
    assert np.linalg.norm(le["twist_sim"][:3]) > 1e-4  # a real, visible effect
    assert le["rel_error_vs_pred"] < 0.1
    assert le["rel_error_vs_pred"] < 0.01
    assert le["rel_error_vs_exact"] < 1e-6


def test_iterative_solver_also_within_tolerance(default_asm, near_home):
    """PyBullet's default iterative solver (sequential impulses, 200 iterations, 1 ms) starting
    at the kinematic pose: softer, but still inside 1 mm / 1 mrad with the payload, and its
    leg-error response still agrees with J_L within 10 % (larger errors, 0.5 mm)."""
    Q = near_home(default_asm, 22)
    rep = physics_check(default_asm, Q, PhysicsParams(payload_kg=PAYLOAD, solver="si",
                                                      start="pose", settle_max_s=1.5),
                        leg_error=5e-4, seed=2)
    assert rep.within(1e-3, 1e-3), (rep.tool_error_m, rep.tool_error_rad)
    assert rep.tool_error_m > 1e-9  # the iterative solver does leave a (small) residual
    assert rep.leg_error["rel_error_vs_pred"] < 0.1


def test_model_reads_back_its_start_pose(default_asm, near_home):
    Q = near_home(default_asm, 23)
    with PhysicsModel(default_asm, Q, PhysicsParams(start="pose")) as m:
        np.testing.assert_allclose(m.simulated_Q(), Q, atol=1e-12)
        np.testing.assert_allclose(m.tool_pose(), A.forward_kinematics(default_asm, Q), atol=1e-12)
        np.testing.assert_allclose(m.leg_positions(), A.leg_lengths(default_asm, Q), atol=1e-12)
        assert m.joint_gaps() < 1e-12


def test_physics_cli_json(capsys):
    assert main(["physics", "--target", "0.02 0.01 1.15 0.05 0.0 0.1", "--payload", "0.5",
                 "--leg-error", "2e-4", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["pass"] and doc["params"]["payload_kg"] == 0.5
    assert doc["tool_error_m"] < 1e-3 and doc["tool_error_rad"] < 1e-3
    np.testing.assert_allclose(A.transform_to_pose(np.array(doc["T_sim"])),
                               [0.02, 0.01, 1.15, 0.05, 0.0, 0.1], atol=1e-9)
    assert doc["leg_error"]["rel_error_vs_pred"] < 0.1


def test_physics_cli_table(capsys):
    assert main(["physics", "--pose", " ".join(map(str, A.home_pose(A.load_config("duo")))),
                 "--config", "duo", "--leg-error", "0", "--start", "pose"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "payload 0.5 kg" in out and "J_L" not in out


def test_params_validation():
    with pytest.raises(ValueError, match="solver"):
        PhysicsParams(solver="magic")
    with pytest.raises(ValueError, match="payload"):
        PhysicsParams(payload_kg=-1)


def test_settled_leg_forces_balance_the_top_plate(default_asm, near_home):
    """The leg forces the model measures (``leg_forces_n``, positive = compression) against an
    independent statics solve: with (nearly) massless legs every leg is a two-force member, so
    the six axial forces on the top plate balance its weight and the payload's, force and moment
    about their centre of mass (a 6 x 6 linear system in the world frame)."""
    Q = near_home(default_asm, 24)
    prm = PhysicsParams(payload_kg=PAYLOAD, housing_kg=1e-6, rod_kg=1e-6, start="pose")
    rep = physics_check(default_asm, Q, prm, leg_error=0.0)
    F = rep.leg_forces_n
    assert F.shape == (default_asm.n_platforms, 6)
    np.testing.assert_array_equal(rep.leg_force_n, np.abs(F).max(axis=1))
    with PhysicsModel(default_asm, Q, prm) as m:
        m.move_to(A.leg_lengths(default_asm, Q))
        np.testing.assert_allclose(m.leg_forces(), F, rtol=1e-9, atol=1e-9)
        top = m.plates[-1]
        mass = m.masses[-1]
        com = (m.top_frames()[-1] @ top.T_body_inertial)[:3, 3]  # world
    from sims.viz.scene import stack_pose

    sp = stack_pose(default_asm, Q)
    p = sp.top_joints[-1]  # (6, 3) world
    u = p - sp.base_joints[-1]
    u /= np.linalg.norm(u, axis=1, keepdims=True)  # from base to top joint
    G = np.vstack([u.T, np.cross(p - com, u).T])  # wrench of unit leg forces on the top plate
    weight = np.array([0, 0, mass * prm.gravity, 0, 0, 0])  # what the legs must hold up
    F_statics = np.linalg.solve(G, weight)
    np.testing.assert_allclose(F[-1], F_statics, rtol=1e-6, atol=1e-6 * mass * prm.gravity)
    assert np.all(F[-1] > 0)  # the legs of a plate carrying a weight push (compression)
