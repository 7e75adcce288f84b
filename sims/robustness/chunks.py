"""One chunk of Monte Carlo samples (Numba): draw, perturb, forward kinematics, twist, statistics.

:func:`run_chunk` runs one chunk, sequentially, in blocks of :data:`~.lanes.KB` lanes, and
:func:`run_chunks` a few consecutive chunks (the tasks of :func:`.montecarlo.simulate`'s thread
pool; it releases the GIL).  A chunk: the random numbers (:mod:`.rng`), the perturbed stack pose
(pose noise directly; actuator noise by the lane Newton, with the scalar Newton of
:mod:`assemblers.kinematics.kernels` for unsettled lanes and for joint errors, see
:func:`perturb_scalar`), the exact forward kinematics and error twists (the lane twins of
:mod:`.lanes`, with the scalar kernels for lanes outside their range) and the per-lane
statistics, summed in lane order into the chunk's record (:mod:`.stats`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from assemblers import _runtime  # noqa: F401  (NUMBA_CACHE_DIR in the user's cache)
from assemblers.geometry.kernels import twist_between
from assemblers.kinematics.kernels import forward, from_legs_platform

from .lanes import (
    CHORD_ITERS,
    KB,
    P_ROWS,
    finish_record,
    forward_lanes,
    legs_newton_lanes,
    stats_lanes,
    twist_between_lanes,
)
from .rng import fix_rejections, random_block
from .stats import hist_index


@njit(cache=True)
def draw_layout(pose_sig, leg_sig, joint_sig, n):
    """Random numbers per sample, by part: ``(n_leg, n_joint, n_pose)`` = (6N or 0, 36N or 0,
    6N or 0), laid out in that order (a part is absent when its sigma is 0)."""
    n_leg = 6 * n if leg_sig > 0.0 else 0
    n_joint = 36 * n if joint_sig > 0.0 else 0
    n_pose = 0
    for k in range(6 * n):
        if pose_sig[k] > 0.0:
            n_pose = 6 * n
    return n_leg, n_joint, n_pose


@njit(cache=True)
def perturb_scalar(z, b, t, Q, L_nom, pose_sig, leg_sig, joint_sig, tol, max_iter, Qp, Lp, bp,
                   tp):
    """The perturbed stack pose of one sample from its random numbers, with the Newton building
    block of :mod:`assemblers.kinematics.kernels` (``from_legs_platform``, started at the nominal
    pose).

    ``z`` (m,) the sample's random numbers, laid out ``[6N legs][36N joints: per platform 18
    base then 18 top coordinates][6N pose]`` (a part is absent when its sigma is 0).  Inputs:
    ``b``/``t`` (N, 6, 3) m joints; ``Q`` (6N,) nominal pose; ``L_nom`` (N, 6) m its legs;
    ``pose_sig`` (6N,) std (m, rad); ``leg_sig``, ``joint_sig`` m; ``tol`` m and ``max_iter`` for
    Newton.  Outputs: ``Qp`` (6N,) perturbed pose; ``Lp`` (N, 6) commanded legs; ``bp``/``tp``
    (N, 6, 3) perturbed joints (written only with joint errors).
    Returns False if a platform's Newton did not converge (the sample is then invalid).
    """
    n = b.shape[0]
    n_leg, n_joint, n_pose = draw_layout(pose_sig, leg_sig, joint_sig, n)
    for k in range(6 * n):
        Qp[k] = Q[k]
    ok = True
    for i in range(n):
        for k in range(6):
            Lp[i, k] = L_nom[i, k]
            if n_leg > 0:
                Lp[i, k] += leg_sig * z[6 * i + k]
        if n_joint > 0:
            o = n_leg + 36 * i
            for k in range(6):
                for r in range(3):
                    bp[i, k, r] = b[i, k, r] + joint_sig * z[o + 3 * k + r]
                    tp[i, k, r] = t[i, k, r] + joint_sig * z[o + 18 + 3 * k + r]
            err, _ = from_legs_platform(bp[i], tp[i], Lp[i], Qp, 6 * i, tol, max_iter)
        else:
            err, _ = from_legs_platform(b[i], t[i], Lp[i], Qp, 6 * i, tol, max_iter)
        if not err <= tol:
            ok = False
    if n_pose > 0:
        o = n_leg + n_joint
        for k in range(6 * n):
            Qp[k] += pose_sig[k] * z[o + k]
    return ok


@njit(cache=True, inline="always")  # inlined into run_chunks, its one caller in the kernels
def run_chunk(start, stop, b, t, T_mount, T_after, Q, trig, L_nom, Jinv, T_nom, pose_sig,
              uniform, leg_sig, joint_sig, length_scale, tol, max_iter, key, rec, hist_p, hist_r,
              out_e, out_Q, out_L, out_b, out_t, out_ok):
    """Samples ``start .. stop - 1``, in blocks of KB lanes, into one chunk record; returns
    (valid, failed) sample counts.

    ``rec`` (CHUNK_FIELDS,) and ``hist_p``/``hist_r`` (HIST_BINS,) int64: the chunk's record and
    histograms (:mod:`.stats`), zeroed by the caller; ``length_scale`` m (``W_out``); ``key``
    the seed's stream key.  Debug outputs, used when ``out_e`` is not empty, for samples
    ``s < out_e.shape[0]``: ``out_e`` (n, 6) twists, ``out_Q`` (n, 6N) perturbed poses, ``out_L``
    (n, N, 6) commanded legs, ``out_b``/``out_t`` (n, N, 6, 3) perturbed joints, ``out_ok`` (n,).
    Other arguments: :func:`perturb_scalar`; ``trig`` (N, 6) cos/sin of the nominal angles;
    ``T_nom`` (4, 4) the nominal tool pose; ``uniform``: uniform pose noise.
    ``Jinv`` (N, 6, 6) the inverse leg Jacobians at ``Q``.  Actuator noise alone (with or without
    pose noise) goes through the lane-vectorized chord Newton (:func:`.lanes.legs_newton_lanes`), its
    unsettled lanes and any joint errors lane by lane through Newton (:func:`perturb_scalar`); then the
    exact forward kinematics and error twists of all lanes are vectorized (the twins
    :func:`.lanes.forward_lanes`, :func:`.lanes.twist_between_lanes`), with a per-lane fallback to
    ``kinematics.kernels.forward`` and ``geometry.kernels.twist_between``
    outside their polynomial ranges.  The statistics are accumulated per lane
    (:func:`.lanes.stats_lanes`) and summed in lane order, so the record depends only on the samples.
    """
    n = b.shape[0]
    n_leg, n_joint, n_pose = draw_layout(pose_sig, leg_sig, joint_sig, n)
    m = n_leg + n_joint + n_pose
    first_uniform = n_leg + n_joint if uniform else m
    newton = n_leg + n_joint > 0
    l2 = length_scale * length_scale
    # private copies: a call that takes a slice of a shared array updates the shared refcount
    # atomically, which makes threads fight over one cache line
    bj = b.copy()
    tj = t.copy()
    Zf = np.zeros(max(m, 6 * n) * KB)  # rows not drawn stay 0 (no disturbance of that kind)
    Rj = np.zeros(max(m, 1) * KB, dtype=np.uint8)
    A = np.empty(12 * KB)
    E = np.empty(6 * KB)
    big = np.empty(KB, dtype=np.uint8)
    valid = np.empty(KB, dtype=np.uint8)
    P = np.zeros(P_ROWS * KB)
    MP = np.empty(KB)
    MR = np.empty(KB)
    shift = np.zeros(7)
    st = np.empty(1, dtype=np.uint64)
    z = np.zeros(max(m, 6 * n))
    Qp = np.empty(6 * n)
    Lp = np.empty((n, 6))
    bp = bj.copy()
    tp = tj.copy()
    work = np.empty((2, 4, 4))
    Tp = np.empty((4, 4))
    e = np.empty(6)
    n_store = out_e.shape[0]
    ones = np.ones(6 * n)
    D = np.zeros(6 * n * KB)  # Newton path: Qp - Q per lane, rows of KB
    chord = n_leg > 0 and n_joint == 0
    res = np.zeros(6 * KB)
    act = np.zeros(KB)
    X = np.zeros(13 * KB)
    fb = np.zeros(KB, dtype=np.uint8)
    have_shift = False
    cnt = 0
    bad = 0
    for s0 in range(start, stop, KB):
        kb = min(KB, stop - s0)
        random_block(key, s0, m, first_uniform, Zf, Rj)
        fix_rejections(key, s0, kb, m, first_uniform, Zf, Rj, st)
        for k in range(KB):
            valid[k] = 1 if k < kb else 0
        if newton:
            if chord:  # actuator noise only (and pose noise): Newton vectorized over lanes
                legs_newton_lanes(bj, tj, Q, trig, L_nom, Jinv, leg_sig, Zf, tol, CHORD_ITERS,
                                  D, res, act, X, fb)
            for k in range(kb):
                if chord and not fb[k]:
                    if n_pose > 0:  # compliance on top of the actuators (as perturb_scalar)
                        for j in range(6 * n):
                            D[j * KB + k] += pose_sig[j] * Zf[(n_leg + j) * KB + k]
                    if s0 + k < n_store:
                        for j in range(6 * n):
                            Qp[j] = Q[j] + D[j * KB + k]
                        for i in range(n):
                            for j in range(6):
                                Lp[i, j] = L_nom[i, j] + leg_sig * Zf[(6 * i + j) * KB + k]
                        _store_state(s0 + k, Qp, Lp, bp, tp, np.True_, np.True_, np.False_,
                                     L_nom, bj, tj, out_Q, out_L, out_b, out_t, out_ok)
                    continue
                for j in range(m):
                    z[j] = Zf[j * KB + k]
                ok = perturb_scalar(z, bj, tj, Q, L_nom, pose_sig, leg_sig, joint_sig, tol,
                                    max_iter, Qp, Lp, bp, tp)
                for j in range(6 * n):
                    D[j * KB + k] = Qp[j] - Q[j]
                if not ok:
                    valid[k] = 0
                    for j in range(6 * n):
                        D[j * KB + k] = 0.0
                if s0 + k < n_store:
                    _store_state(s0 + k, Qp, Lp, bp, tp, ok, leg_sig > 0.0, joint_sig > 0.0,
                                 L_nom, bj, tj, out_Q, out_L, out_b, out_t, out_ok)
            for k in range(kb, KB):
                for j in range(6 * n):
                    D[j * KB + k] = 0.0
            src = D
            g = ones
        else:
            src = Zf
            g = pose_sig
        # exact forward kinematics of Q + g * src and the error twists, vectorized over lanes
        forward_lanes(T_mount, T_after, Q, trig, g, src, 0, A, big)
        twist_between_lanes(A, T_nom, E, big)
        for k in range(kb):
            s = s0 + k
            if big[k] or (s < n_store and not newton):
                for j in range(6 * n):
                    Qp[j] = Q[j] + g[j] * src[j * KB + k]
            if big[k] and valid[k]:
                # angle error beyond the polynomials or a large rotation error: the building
                # kernels (kinematics.kernels.forward, libm trig) and the full log map
                forward(T_mount, T_after, Qp, Tp, work)
                twist_between(T_nom, Tp, e)
                for r in range(6):
                    E[r * KB + k] = e[r]
            if s < n_store:
                if not newton:
                    _store_state(s, Qp, Lp, bp, tp, np.True_, np.False_, np.False_, L_nom,
                                 bj, tj, out_Q, out_L, out_b, out_t, out_ok)
                for r in range(6):
                    out_e[s, r] = E[r * KB + k]
        if not have_shift:
            for k in range(kb):
                if valid[k]:
                    p2 = 0.0
                    r2 = 0.0
                    for r in range(3):
                        shift[r] = E[r * KB + k]
                        shift[r + 3] = E[(r + 3) * KB + k]
                        p2 += shift[r] * shift[r]
                        r2 += shift[r + 3] * shift[r + 3]
                    shift[6] = p2 + l2 * r2
                    have_shift = True
                    break
        for k in range(KB):
            if not valid[k]:  # finite values; their weight is 0
                for r in range(6):
                    E[r * KB + k] = shift[r]
        stats_lanes(E, valid, shift, l2, P, MP, MR)
        for k in range(kb):
            if valid[k]:
                hist_p[hist_index(MP[k])] += 1
                hist_r[hist_index(MR[k])] += 1
                cnt += 1
            else:
                bad += 1
    if cnt > 0:
        finish_record(P, shift, rec)
    return cnt, bad


@njit(cache=True)
def _store_state(s, Qp, Lp, bp, tp, ok, has_legs, has_joints, L_nom, b, t, out_Q, out_L, out_b,
                 out_t, out_ok):
    """Debug outputs of sample ``s`` (see :func:`run_chunk`).  Its callers pass the flags as
    NumPy booleans (``np.True_``): a literal ``True`` compiles one specialization per literal."""
    n = b.shape[0]
    for j in range(6 * n):
        out_Q[s, j] = Qp[j]
    out_ok[s] = ok
    for i in range(n):
        for k in range(6):
            out_L[s, i, k] = Lp[i, k] if has_legs else L_nom[i, k]
            for r in range(3):
                out_b[s, i, k, r] = bp[i, k, r] if has_joints else b[i, k, r]
                out_t[s, i, k, r] = tp[i, k, r] if has_joints else t[i, k, r]


@njit(cache=True, nogil=True)  # the chunks run on threads of montecarlo.simulate
def run_chunks(j0, j1, chunk0, chunk_size, n_total, b, t, T_mount, T_after, Q, trig, L_nom, Jinv,
               T_nom, pose_sig, uniform, leg_sig, joint_sig, length_scale, tol, max_iter, key,
               counts, recs, hists, failed, out_e, out_Q, out_L, out_b, out_t, out_ok):
    """Chunks ``chunk0 + j`` for ``j`` in ``j0 .. j1 - 1`` (samples ``(chunk0 + j) * chunk_size``
    up to ``n_total``), one after another (:func:`run_chunk`), into row ``j`` of the outputs
    (zeroed by the caller): ``counts`` (C,) int64 valid samples, ``recs`` (C, CHUNK_FIELDS)
    chunk records, ``hists`` (C, 2, HIST_BINS) int64, ``failed`` (C,) int64 samples whose Newton
    failed; the debug outputs of :func:`run_chunk` (empty arrays: none).  Releases the GIL:
    :func:`.montecarlo.simulate` runs it on the threads of a pool, a few chunks per task (Numba's
    ``prange`` over the chunks compiled the whole chunk kernel a second time: about 13 s of a
    first run)."""
    for j in range(j0, j1):
        start = (chunk0 + j) * chunk_size
        stop = min(start + chunk_size, n_total)
        cnt, bad = run_chunk(start, stop, b, t, T_mount, T_after, Q, trig, L_nom, Jinv, T_nom,
                             pose_sig, uniform, leg_sig, joint_sig, length_scale, tol, max_iter,
                             key, recs[j], hists[j, 0], hists[j, 1], out_e, out_Q, out_L, out_b,
                             out_t, out_ok)
        counts[j] = cnt
        failed[j] = bad
