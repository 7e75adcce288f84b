"""Reading TOML tables for the config loader: key paths, unknown keys, typed and bounded values.

Every problem raises :class:`ConfigError` naming the file, the dotted key and what is wrong, on
one line.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InputError


class ConfigError(InputError):
    """A config problem: ``source`` (file), ``key`` (dotted path) and ``problem``."""

    def __init__(self, source: str, key: str, problem: str):
        self.source, self.key, self.problem = source, key, problem
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + problem)


class _Table:
    """A TOML table being read: tracks the key path and which keys were used."""

    def __init__(self, data: Any, path: str, source: str):
        self.source, self.path = source, path
        if not isinstance(data, dict):
            raise ConfigError(source, path, f"must be a table, got {_type_name(data)}")
        bad = next((k for k in data if not isinstance(k, str)), None)
        if bad is not None:
            raise ConfigError(source, path, f"keys must be strings, got {_short(bad)}")
        self.data = data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.source, self.key(name), problem)

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str, default: Any = ..., required: bool = True) -> Any:
        if name not in self.data:
            if default is ... and required:
                raise self.error(name, "missing (required)")
            return None if default is ... else default
        self.used.add(name)
        return self.data[name]

    def number(self, name, default=..., *, positive=False, nonneg=False, lo=None, hi=None):
        v = self.raw(name, default)
        if v is None or (v is default and default is not ...):
            return v
        return _check_number(v, self.error, name, positive=positive, nonneg=nonneg, lo=lo, hi=hi)

    def integer(self, name, default=..., *, lo=None, hi=None) -> int:
        v = self.raw(name, default)
        if v is default and default is not ...:
            return v
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(name, f"must be an integer, got {_type_name(v)} {v!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.error(name, f"must be in [{lo}, {hi}], got {v}")
        return v

    def string(self, name, default=..., *, choices=None) -> str:
        v = self.raw(name, default)
        if v is default and default is not ...:
            return v
        if not isinstance(v, str):
            raise self.error(name, f"must be a string, got {_type_name(v)} {v!r}")
        if choices is not None and v not in choices:
            raise self.error(name, f"must be one of {', '.join(map(repr, choices))}, got {v!r}")
        return v

    def vector(self, name, length, default=..., *, positive=False, nonneg=False, lo=None,
               hi=None) -> np.ndarray:
        """A list of ``length`` numbers, or (when ``default`` is an array) a scalar broadcast."""
        v = self.raw(name, default)
        if v is default and default is not ...:
            return v
        if isinstance(v, (int, float)) and not isinstance(v, bool) and default is not ...:
            v = [v] * length
        if not isinstance(v, list) or len(v) != length:
            raise self.error(name, f"must be a list of {length} numbers, got {_short(v)}")
        return np.array([self._element(x, f"{name}[{i}]", positive=positive, nonneg=nonneg,
                                       lo=lo, hi=hi) for i, x in enumerate(v)])

    def matrix(self, name, rows, cols, *, lo=None, hi=None) -> np.ndarray:
        v = self.raw(name)
        if not isinstance(v, list) or len(v) != rows:
            raise self.error(name, f"must be {rows} rows of {cols} numbers, got {_short(v)}")
        out = np.empty((rows, cols))
        for i, row in enumerate(v):
            if not isinstance(row, list) or len(row) != cols:
                raise self.error(f"{name}[{i}]", f"must be a list of {cols} numbers, got {_short(row)}")
            for j, x in enumerate(row):
                out[i, j] = self._element(x, f"{name}[{i}][{j}]", lo=lo, hi=hi)
        return out

    def _element(self, x, key: str, **checks) -> float:
        return _check_number(x, lambda _n, problem: self.error(key, problem), key, **checks)

    def table(self, name, required=False) -> _Table | None:
        v = self.raw(name, None if not required else ..., required=required)
        if v is None:
            return None
        return _Table(v, self.key(name), self.source)

    def done(self) -> None:
        """Reject keys that were never read (typos must not pass silently)."""
        extra = [k for k in self.data if k not in self.used]
        if extra:
            where = f"[{self.path}]" if self.path else "the top level"
            raise ConfigError(
                self.source, self.key(extra[0]), f"unknown key in {where} (check the spelling; "
                "docs/config.md lists the keys)"
            )


def _type_name(v: Any) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(v), type(v).__name__
    )


def _short(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _check_number(v, error, name, *, positive=False, nonneg=False, lo=None, hi=None) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise error(name, f"must be a number, got {_type_name(v)} {_short(v)}")
    try:
        v = float(v)
    except OverflowError:  # a TOML integer beyond float range
        raise error(name, f"must be a finite number, got an integer of {len(str(v))} digits") from None
    if not math.isfinite(v):
        raise error(name, f"must be a finite number, got {v}")
    if positive and v <= 0:
        raise error(name, f"must be positive, got {v}")
    if nonneg and v < 0:
        raise error(name, f"must not be negative, got {v}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        if lo is None:
            raise error(name, f"must be at most {hi:g}, got {v}")
        if hi is None:
            raise error(name, f"must be at least {lo:g}, got {v}")
        raise error(name, f"must be in [{lo}, {hi}], got {v}")
    return v

