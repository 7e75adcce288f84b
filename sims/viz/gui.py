"""The interactive viewer: PyBullet's GUI with sliders for the tool target (``show --gui``).

PyBullet's GUI connect kills the whole process when there is no X server, so
:func:`display_available` checks first.  Errors are :class:`GuiError` (the command module turns
them into an exit status).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import numpy as np


class GuiError(RuntimeError):
    """The GUI cannot run: ``status`` 2 (no display: bad input) or 1 (the window failed)."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


def display_available() -> tuple[bool, str]:
    """Whether an X server answers (PyBullet's GUI is X11/OpenGL; connecting without one kills
    the process, so this is checked first).  Returns ``(ok, reason)``.

    ``DISPLAY`` must be set; then ``xdpyinfo`` is asked when installed (it also checks
    authorisation), else the server's socket: ``/tmp/.X11-unix/X<n>`` (or its abstract twin) for
    a local display, TCP port 6000+n for ``host:n``."""
    disp = os.environ.get("DISPLAY", "")
    if not disp:
        if os.environ.get("WAYLAND_DISPLAY"):
            return False, ("WAYLAND_DISPLAY is set but DISPLAY is not (PyBullet's GUI needs X11, "
                           "e.g. XWayland)")
        return False, "no display (DISPLAY is not set)"
    host, sep, rest = disp.rpartition(":")
    num = rest.split(".")[0]
    if not sep or not num.isdigit():
        return False, f"DISPLAY={disp!r} is not of the form [host]:n[.screen]"
    exe = shutil.which("xdpyinfo")
    if exe:
        try:
            r = subprocess.run([exe], capture_output=True, timeout=5)
        except (subprocess.TimeoutExpired, OSError) as exc:
            return False, f"X server {disp} does not answer ({type(exc).__name__})"
        if r.returncode != 0:
            msg = r.stderr.decode(errors="replace").strip().splitlines()
            return False, f"X server {disp} does not answer ({msg[0] if msg else 'xdpyinfo failed'})"
        return True, f"X server {disp}"
    if host in ("", "unix"):
        for addr in (f"/tmp/.X11-unix/X{num}", f"\0/tmp/.X11-unix/X{num}"):
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(2.0)
                    s.connect(addr)
                return True, f"X server {disp}"
            except OSError:
                continue
        return False, f"X server {disp} does not answer (no socket /tmp/.X11-unix/X{num})"
    try:
        with socket.create_connection((host, 6000 + int(num)), timeout=2.0):
            return True, f"X server {disp}"
    except OSError as exc:
        return False, f"X server {disp} does not answer ({exc})"


def run_gui(asm, Q, T_target, style, criterion=None, max_seconds: float | None = None) -> int:
    """The interactive viewer: six sliders (x, y, z m; roll, pitch, yaw rad) for the tool target;
    every change re-solves the IK from the previous solution and re-poses the robot; the status
    line shows the cost or why the target is not reached.  Returns 0 when the window is closed
    (or after ``max_seconds``)."""
    from .client import pybullet, quiet_stdout

    ok, why = display_available()
    if not ok:
        raise GuiError(f"--gui needs a display: {why}")
    import assemblers as A

    # compile and run the IK once before the window opens: the GUI's render thread competes for
    # the CPU (all of it with software OpenGL), which would make the first slider move sluggish
    A.solve_ik(asm, T_target if T_target is not None else A.forward_kinematics(asm, Q),
               criterion=criterion, initial=Q)
    pb = pybullet()
    with quiet_stdout():  # the GUI's threads are chatty on stdout
        return _gui_loop(pb, asm, Q, T_target, style, criterion, max_seconds)


def _gui_loop(pb, asm, Q, T_target, style, criterion, max_seconds) -> int:
    import assemblers as A

    from .scene import AssemblerScene

    cid = pb.connect(pb.GUI)
    if cid < 0:
        raise GuiError("could not open the PyBullet GUI window", 1)
    try:
        pb.configureDebugVisualizer(pb.COV_ENABLE_SHADOWS, 1, physicsClientId=cid)
        for flag in (pb.COV_ENABLE_RGB_BUFFER_PREVIEW, pb.COV_ENABLE_DEPTH_BUFFER_PREVIEW,
                     pb.COV_ENABLE_SEGMENTATION_MARK_PREVIEW):
            pb.configureDebugVisualizer(flag, 0, physicsClientId=cid)
        pb.configureDebugVisualizer(pb.COV_ENABLE_RENDERING, 0, physicsClientId=cid)  # fast build
        scene = AssemblerScene(asm, client=cid, style=style)
        scene.set_pose(Q, T_target)
        scene._ensure_target_marker()  # create it now, with rendering off
        scene.set_target(T_target)
        pb.configureDebugVisualizer(pb.COV_ENABLE_RENDERING, 1, physicsClientId=cid)
        pts = scene.scene_points()
        c = 0.5 * (pts.min(0) + pts.max(0))
        pb.resetDebugVisualizerCamera(float(np.ptp(pts[:, 2])) * 1.25, 40, -18, c.tolist(),
                                      physicsClientId=cid)
        pose0 = A.transform_to_pose(T_target if T_target is not None else
                                    A.forward_kinematics(asm, Q))
        names = ("x [m]", "y [m]", "z [m]", "roll [rad]", "pitch [rad]", "yaw [rad]")
        span = (0.15, 0.15, 0.15, 0.4, 0.4, 0.6)
        sliders = [pb.addUserDebugParameter(n, float(v - s), float(v + s), float(v),
                                            physicsClientId=cid)
                   for n, v, s in zip(names, pose0, span)]
        status = -1
        last = None
        t_end = None if max_seconds is None else time.monotonic() + max_seconds
        while pb.isConnected(cid) and (t_end is None or time.monotonic() < t_end):
            vals = np.array([pb.readUserDebugParameter(s, physicsClientId=cid) for s in sliders])
            if last is None or np.max(np.abs(vals - last)) > 1e-9:
                last = vals
                T = A.pose_to_transform(vals)
                r = A.solve_ik(asm, T, criterion=criterion, initial=Q)
                if r.success:
                    Q = r.Q
                    text, color = f"IK ok: cost {r.cost:.4g} ({r.time_s * 1e3:.0f} ms)", [0, 0.5, 0]
                else:
                    text, color = f"not reached: {r.reason}", [0.8, 0, 0]
                scene.set_pose(Q, T)
                status = pb.addUserDebugText(text, [float(c[0]), float(c[1]),
                                                    float(pts[:, 2].max()) + 0.05],
                                             color, 1.3, replaceItemUniqueId=status,
                                             physicsClientId=cid)
            time.sleep(0.03)
    except pb.error:  # the window was closed
        pass
    finally:
        if pb.isConnected(cid):
            pb.disconnect(cid)
    return 0
