"""Open criteria: blends of the built-in criteria and user-defined JAX criteria, registered at
run time as rows of :data:`~assemblers.ik.criteria.SPECS`, and the per-problem data of the
criteria of the loads (:class:`~assemblers.ik.criteria.Terms`).

* a **blend** ``{"fn": 1, "loads": 0.2}`` (or the text ``"fn:1,loads:0.2"``) minimizes
  ``sum_t w_t f_t(Q) / f_t(Q_even)``: each term normalized by its value at the even split of
  the same target (before its repair), so the weights say how much of each criterion's own
  scale counts; a term of weight 0 is left out (the blend is then its other terms);
* a **user criterion** is a callable ``fn(Q, m) -> scalar`` in JAX (:mod:`.user`).

:func:`resolve` turns what ``solve_ik`` is given into a name of ``SPECS``; :func:`terms` builds
the kernels' data for a problem.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ..kinematics.api import home_pose
from ..statics.loads import has_load, has_stiffness, load_arrays
from . import user
from .criteria import (
    BLENDABLE,
    CODES,
    CRIT_BLEND,
    CRIT_USER,
    CRITERIA,
    SPECS,
    Criterion,
    Terms,
    epigraph_codes,
)

_BLENDS: dict[str, tuple[tuple[str, float], ...]] = {}  # name -> ((term, weight), ...)
_USER_NAMES: dict[int, tuple[object, str]] = {}  # id(fn) -> (fn, name)


def blend_terms(name: str) -> tuple[tuple[str, float], ...]:
    """The ``(term, weight)`` pairs of the blend ``name``."""
    return _BLENDS[name]


def _weight(term: str, w) -> float:
    """The weight ``w`` of the blend term ``term`` as a float (InputError when not a number)."""
    try:
        return float(w)
    except (TypeError, ValueError):
        raise InputError(f"criterion: the weight of {term!r} must be a number, got {w!r}") from None


def _blend(spec: dict) -> str:
    """Register the blend ``spec`` (term -> weight): its name, e.g. ``"fn:1,loads:0.2"``."""
    if not spec:
        raise InputError("criterion: an empty blend")
    pairs = []
    for term, w in spec.items():
        if term not in BLENDABLE:
            raise InputError(f"criterion: blend term {term!r} is not one of {', '.join(BLENDABLE)}")
        w = _weight(term, w)
        if not (math.isfinite(w) and w >= 0):
            raise InputError(f"criterion: the weight of {term!r} must be finite and >= 0, got {w}")
        pairs.append((term, w))
    used = [(t, w) for t, w in pairs if w > 0]
    if not used:
        raise InputError("criterion: every weight of the blend is 0")
    wrts = {SPECS[t].wrt for t, _ in used}
    if len(wrts) > 1:
        raise InputError("criterion: fn_legs (the leg weights of [sensitivity]) cannot be blended "
                         "with fn or condition (the pose weights)")
    name = ",".join(f"{t}:{w:.12g}" for t, w in pairs)
    if name not in _BLENDS:
        specs = [SPECS[t] for t, _ in used]
        needs = "stiffness" if any(s.needs == "stiffness" for s in specs) else (
            "load" if any(s.needs == "load" for s in specs) else "")
        SPECS[name] = Criterion(CRIT_BLEND, wrts.pop(), name, all(s.ipm and not s.epigraph
                                                                   for s in specs),
                                max(s.f_tol for s in specs), False,
                                "blend: " + " + ".join(f"{w:g} {t}" for t, w in used),
                                any(s.epigraph for s in specs), needs)
        CODES[name] = CRIT_BLEND
        _BLENDS[name] = tuple(pairs)
    return name


def _parse_blend(text: str) -> dict:
    """``"fn:1,loads:0.2"`` -> {"fn": 1.0, "loads": 0.2}."""
    spec = {}
    for part in text.split(","):
        term, sep, w = part.partition(":")
        term = term.strip()
        if not sep or not term:
            raise InputError(f"criterion: expected NAME:WEIGHT pairs separated by commas (e.g. "
                             f"fn:1,loads:0.2), got {text!r}")
        if term in spec:
            raise InputError(f"criterion: {term!r} appears twice in the blend")
        spec[term] = _weight(term, w)
    return spec


def _user(fn) -> str:
    """Register the user criterion ``fn(Q, m)``: its name ``user:<function name>``."""
    known = _USER_NAMES.get(id(fn))
    if known is not None and known[0] is fn:
        return known[1]
    base = "user:" + getattr(fn, "__name__", type(fn).__name__)
    name, k = base, 1
    while name in SPECS:
        k += 1
        name = f"{base}#{k}"
    SPECS[name] = Criterion(CRIT_USER, "pose", name, False, 0.0, False,
                            f"user-defined: {getattr(fn, '__qualname__', name)}")
    CODES[name] = CRIT_USER
    user.add(name, fn)
    _USER_NAMES[id(fn)] = (fn, name)
    return name


def resolve(criterion) -> str:
    """A ``solve_ik`` criterion as a name of ``SPECS``: a built-in name, a blend (a dict of
    weights or the text ``"fn:1,loads:0.2"``), a registered blend or user name, or a callable
    ``fn(Q, m)`` (a user criterion).  Raises InputError for anything else."""
    if callable(criterion):
        return _user(criterion)
    if isinstance(criterion, dict):
        return _blend(criterion)
    if isinstance(criterion, str):
        if criterion in CRITERIA or criterion in _BLENDS or criterion in user._FUNCTIONS:
            return criterion
        if ":" in criterion:
            return _blend(_parse_blend(criterion))
    raise InputError(f"criterion: must be one of {', '.join(CRITERIA)}, a blend such as "
                     f"\"fn:1,loads:0.2\" or a function fn(Q, m); got {criterion!r}")


def check(asm, name: str) -> None:
    """InputError when the criterion ``name`` needs a load or leg stiffnesses ``asm`` lacks
    (checked once per Assembler and criterion: 20 us, a tenth of a duo solve)."""
    needs = SPECS[name].needs
    if needs not in ("load", "stiffness") or asm.__dict__.get("_ik_checked_" + name):
        return
    loads = load_arrays(asm)
    if not has_load(loads):
        raise InputError(f"criterion {name}: the config has no load (give top_mass, leg_mass or "
                         "a [stack] payload, and a non-zero gravity; docs/statics.md)")
    if needs == "stiffness" and not has_stiffness(loads):
        raise InputError(f"criterion {name}: no platform type of the config gives leg_stiffness")
    asm.__dict__["_ik_checked_" + name] = True


_BASE = "_ik_terms"
_BLEND_ARRAYS: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def base_terms(asm) -> Terms:
    """The criterion-independent part of :class:`Terms` for ``asm`` (built once)."""
    cached = asm.__dict__.get(_BASE)
    if cached is None:
        from .problem import leg_bounds

        rating = [p.max_leg_force for p in asm.platforms]
        lo, hi = leg_bounds(asm)  # (N, 6) geometric, as the kernels' lengths
        cached = Terms(
            codes=np.zeros(0, np.int64), weights=np.zeros(0), epi=np.zeros(0, np.int64),
            force_scale=np.array([1.0 if r is None else r for r in rating]),
            rated=np.array([i for i, r in enumerate(rating) if r is not None], dtype=np.int64),
            mid=0.5 * (lo + hi), half=0.5 * (hi - lo), user=np.zeros(1))
        asm.__dict__[_BASE] = cached
    return cached


def terms(asm, P, name: str) -> Terms:
    """The :class:`Terms` of criterion ``name`` for the problem ``P`` (its target set): the
    epigraph variables, a blend's normalized weights (at the even split of ``P.T_target``,
    cached for the last target), a user criterion's key."""
    base = base_terms(asm)
    spec = SPECS[name]
    if spec.code != CRIT_BLEND and spec.code != CRIT_USER and not spec.epigraph:
        return base
    epi = np.array(epigraph_codes(name), dtype=np.int64)
    if spec.code == CRIT_USER:
        return base._replace(epi=epi, user=np.array([user.key_for(asm, name)]))
    if spec.code != CRIT_BLEND:
        return base._replace(epi=epi)
    pairs = blend_terms(name)
    fixed = _BLEND_ARRAYS.get(name)
    if fixed is None:  # the blend's term codes and raw weights (built once per blend)
        fixed = _BLEND_ARRAYS[name] = (
            np.array([SPECS[t].code for t, _ in pairs], dtype=np.int64),
            np.array([w for _, w in pairs], dtype=np.float64))
    codes, raw = fixed
    key = (name, P.T_target.tobytes())
    cache = asm.__dict__.get("_ik_blend_norm")
    if cache is not None and cache[0] == key:
        return base._replace(codes=codes, weights=cache[1], epi=epi)
    from . import evaluate as ev
    from .problem import n_constraints

    values = np.empty(len(pairs))
    Pt = P._replace(terms=base)
    ev.term_values(Pt, home_pose(asm), codes, raw, np.empty(6 * asm.n_platforms),
                   np.empty(n_constraints(Pt)), values)
    weights = np.zeros(len(pairs))
    for a, (term, w) in enumerate(pairs):
        if w == 0:
            continue
        v = values[a]
        if not (np.isfinite(v) and v > 0):
            raise InputError(f"criterion {name}: the term {term} is {v:g} at the even split of "
                             "this target, so it cannot be normalized there (no load?)")
        weights[a] = w / v
    asm.__dict__["_ik_blend_norm"] = (key, weights)
    return base._replace(codes=codes, weights=weights, epi=epi)


def start_vector(asm, P, Q0) -> np.ndarray:
    """The solver's start ``z`` at the full pose ``Q0`` (6N,): its first N-1 platforms, then
    each epigraph variable just above its criterion's value at ``Q0`` (feasible)."""
    n6 = 6 * (asm.n_platforms - 1)
    z = np.asarray(Q0[:n6], dtype=np.float64)
    if P.terms.epi.size == 0:
        return z
    from . import evaluate as ev
    from .problem import n_constraints

    Q = np.array(Q0, dtype=np.float64)
    Pt = P._replace(terms=base_terms(asm))
    g = np.empty(n_constraints(Pt))
    t = [ev.evaluate(Pt, int(code), Q[:0], Q, False, Q[:0], g, np.empty((0, 0)), True)
         for code in P.terms.epi]
    return np.concatenate([z, np.asarray(t) * (1 + 1e-6) + 1e-12])
