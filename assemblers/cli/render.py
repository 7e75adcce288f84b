"""The one renderer of command output: plain text tables for people, JSON for scripts.

JSON is printed with one indent (2) and is strict: NumPy values become numbers and lists and
every non-finite number (NaN, +-inf, e.g. the condition number of a singular Jacobian) becomes
``null`` (``docs/formats.md``).
"""

from __future__ import annotations

from ..files import dumps_json

INDENT = 2


def dumps(doc) -> str:
    """``doc`` as strict JSON text (non-finite numbers as null), indent :data:`INDENT`."""
    return dumps_json(doc, INDENT)


def print_json(doc) -> None:
    """Print ``doc`` as JSON (see :func:`dumps`) on stdout."""
    print(dumps(doc), flush=True)


def _fmt_row(cells, widths) -> str:
    return "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))


def table(headers, rows) -> str:
    """A plain right-aligned text table: a header line, a rule, one line per row."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    out = [_fmt_row(headers, widths), "  ".join("-" * w for w in widths)]
    out += [_fmt_row(r, widths) for r in rows]
    return "\n".join(out)


def pose_str(q) -> str:
    """One pose ``(x, y, z, roll, pitch, yaw)`` (m, rad) as a line of text."""
    return (f"x={q[0]:+.4f} y={q[1]:+.4f} z={q[2]:+.4f} m  roll={q[3]:+.4f} "
            f"pitch={q[4]:+.4f} yaw={q[5]:+.4f} rad")
