"""``with`` for what runs in the background (emulators, simulated boards): :class:`StartStop`."""

from __future__ import annotations


class StartStop:
    """Mixin of a class with ``start()`` and ``stop()``: ``with x:`` starts ``x`` on entry (and
    gives ``x``), stops it on exit, an exception or not."""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
