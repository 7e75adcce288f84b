"""The documented module paths of sims from before the robustness/ and viz/ packages
(docs/architecture.md, "Old import paths") still give the names that callers import, as the
very objects of the new homes."""

import importlib

import pytest

SHIMS = {
    "sims.montecarlo": ("sims.robustness.montecarlo", (
        "Disturbance", "Samples", "simulate", "sample_errors", "first_order_mean_sq", "seed_key",
        "MAX_RETURN_SAMPLES", "ErrorStats")),
    "sims.stats": ("sims.robustness.stats", (
        "ErrorStats", "StreamingStats", "stats_from_samples", "hist_edges", "hist_index",
        "hist_percentile", "HIST_BINS", "HIST_OCT_MIN", "HIST_SUB", "HIST_RESOLUTION")),
    "sims.study": ("sims.robustness.study", (
        "run_study", "run_studies", "default_disturbance", "TargetUnreachable", "StudyResult",
        "PoseResult", "METRICS", "DEFAULT_SIGMA")),
    "sims.report": ("sims.robustness.report", ("write_report", "terminal_summary", "FIGURES")),
    "sims.scene": ("sims.viz.scene", ("AssemblerScene", "StackPose", "stack_pose",
                                      "z_to_vector_quaternion", "SceneIds", "scene_points")),
    "sims.render": ("sims.viz.render", ("render_pose", "save_image", "animate", "ffmpeg_path",
                                        "default_workers", "render_frames")),
    "sims.physics": ("sims.viz.physics", ("physics_check", "PhysicsReport", "leg_error_study")),
}


@pytest.mark.parametrize("old", list(SHIMS))
def test_old_paths_re_export(old):
    new, names = SHIMS[old]
    o, n = importlib.import_module(old), importlib.import_module(new)
    for name in names:
        assert getattr(o, name) is getattr(n, name), name


def test_old_scene_names_from_their_new_homes():
    from assemblers.geometry import api
    from sims import scene
    from sims.viz import camera, dynamics, style

    assert scene.matrix_to_quaternion is api.matrix_to_quaternion
    assert scene.Style is style.Style and scene.leg_parts is style.leg_parts
    assert scene.Camera is camera.Camera and scene.platform_hues is style.platform_hues
    from sims import physics

    assert physics.PhysicsModel is dynamics.PhysicsModel
    assert physics.PhysicsParams is dynamics.PhysicsParams


def test_commands_come_from_the_new_modules():
    from assemblers.cli.registry import find

    assert find("robustness").module == "sims.robustness.cli"
    for name in ("show", "animate", "physics"):
        assert find(name).module == "sims.viz.cli"


def test_package_names_load_lazily():
    import subprocess
    import sys

    code = ("import sys, sims.robustness, sims.viz\n"
            "assert not [m for m in ('numba', 'pybullet') if m in sys.modules]\n"
            "from sims.robustness import simulate, write_report\n"
            "from sims.viz import AssemblerScene, physics_check\n"
            "assert 'numba' in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
