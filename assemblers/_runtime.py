"""Process-wide runtime set-up: float64 JAX and the persistent caches.

Imported first by :mod:`assemblers` (environment variables only: no JAX import, so the CLI and
the hardware layer start fast); the JAX modules call :func:`configure_jax`, the lowest kernel
modules :func:`gc_off_while_compiling`.  Caches live under the user's cache directory
(``$XDG_CACHE_HOME/assemblers`` or ``~/.cache/assemblers``), never in the repository;
``ASSEMBLERS_CACHE_DIR`` overrides the location.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path


def cache_dir() -> Path:
    """Root of the user's cache for assemblers (JAX compilation cache, Numba cache)."""
    override = os.environ.get("ASSEMBLERS_CACHE_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "assemblers"


def kernel_stamp(root: Path | None = None) -> str:
    """A short hash of every source file under ``assemblers/`` and ``sims/`` (recursively: the
    kernels live in sub-packages) that defines Numba kernels (``@njit``).  Numba's own cache
    checks only the timestamp of the file a function is defined in, so a kernel that calls a
    changed kernel of another file (the SQP calling the evaluation kernel, the Monte Carlo
    calling the kinematics) would load stale machine code; one cache directory per stamp rules
    that out.  ``root``: the folder holding both packages (default: this installation's).
    About 1 ms."""
    h = hashlib.blake2b(digest_size=8)
    root = Path(__file__).resolve().parent.parent if root is None else root
    for pkg in ("assemblers", "sims"):
        base = root / pkg
        for path in sorted(base.rglob("*.py")):
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if b"\n@njit" in data:
                h.update(path.relative_to(base).as_posix().encode() + b"\0" + data)
    return h.hexdigest()


STALE_DAYS = 30.0


def prune_stale_kernel_caches(numba_root: Path, keep: str, days: float = STALE_DAYS) -> list[str]:
    """Remove the Numba caches of other kernel versions (entries of ``numba_root`` other than
    ``keep``) untouched for ``days``: each edit or upgrade of the kernels starts a new directory
    (see :func:`kernel_stamp`), and the old ones would pile up.  A version still in use
    elsewhere only recompiles once.  Returns the names removed; never raises."""
    import shutil
    import time

    removed = []
    try:
        entries = list(os.scandir(numba_root))
    except OSError:
        return removed
    cutoff = time.time() - days * 86400.0
    for entry in entries:
        try:
            if entry.name == keep or entry.stat(follow_symlinks=False).st_mtime > cutoff:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
            removed.append(entry.name)
        except OSError:
            continue
    return removed


def _setup() -> None:
    """Environment only, no imports: ``import assemblers`` (the CLI, configs, the hardware
    layer) must not pay for JAX.  JAX reads these variables when it is first imported; modules
    that use JAX call :func:`configure_jax` as well (for an already imported JAX, and for the
    options without an environment variable)."""
    root = cache_dir()
    # Numba reads NUMBA_CACHE_DIR when it is first imported; set it before any import of numba.
    # One directory per version of the kernel sources (see kernel_stamp).
    if "NUMBA_CACHE_DIR" not in os.environ:
        stamp = kernel_stamp()
        os.environ["NUMBA_CACHE_DIR"] = str(root / "numba" / stamp)
        prune_stale_kernel_caches(root / "numba", keep=stamp)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ["JAX_ENABLE_X64"] = "1"  # the whole package is float64
    try:
        (root / "jax").mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(root / "jax"))
        # Cache every compiled function, even the quick ones: the CLI's start-up is what we save.
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")
    except OSError:  # read-only home: run without a persistent cache
        pass
    if "jax" in sys.modules:  # imported before us: environment variables come too late
        configure_jax()


_configured = False


def configure_jax() -> None:
    """float64, the persistent compilation cache and synchronous CPU dispatch (idempotent)."""
    global _configured
    if _configured:
        return
    import jax

    jax.config.update("jax_enable_x64", True)
    # Our jitted calls are small and sequential (an optimizer's iterates, trajectory steps):
    # synchronous CPU dispatch saves the hand-off to a dispatch thread, about 25 % of a
    # ~250 us IK evaluation on a 2-core machine.  ASSEMBLERS_ASYNC_DISPATCH=1 restores JAX's
    # default.
    if os.environ.get("ASSEMBLERS_ASYNC_DISPATCH", "0") != "1":
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    cache = os.environ.get("JAX_COMPILATION_CACHE_DIR")
    if cache:  # set by _setup unless the cache directory cannot be made
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    _configured = True


_gc_listener = None


def gc_off_while_compiling() -> None:
    """Keep Python's cyclic garbage collector off while a Numba kernel compiles in this process:
    from the start of the outermost compile (the kernels it reaches compile inside it) to its
    end, then as it was before.  Idempotent; called by the lowest kernel modules
    (:mod:`assemblers.geometry.kernels`, :mod:`assemblers.optim.linalg`,
    :mod:`assemblers.optim.kkt`), which every kernel module imports, after they import Numba.

    Why: Numba's compiler allocates millions of objects, many in reference cycles, and keeps a
    growing part of them alive, so the collector's passes grow with the compile: compiling the
    ``ik_leaves`` and ``ik`` kernel groups in one process spent 5.9-6.5 s of its 48-53 s of CPU
    time in them (4267 collections, measured with ``gc.callbacks``; docs/benchmarks.md).  The
    compile's garbage is collected once the collector is back on; a process compiling those
    two groups peaked at 0.79 GB instead of 0.43 GB with the collector off throughout.  The
    warm-up processes (:mod:`assemblers.warmup`) leave it off altogether."""
    global _gc_listener
    if _gc_listener is not None:
        return
    import gc

    from numba.core import event

    class _GcOff(event.Listener):
        def __init__(self):
            self.depth, self.was_on = 0, False

        def on_start(self, e):  # compiles are serialized by Numba's compiler lock
            if self.depth == 0:
                self.was_on = gc.isenabled()
                gc.disable()
            self.depth += 1

        def on_end(self, e):  # (also when the compile raises)
            self.depth -= 1
            if self.depth == 0 and self.was_on:
                gc.enable()

    _gc_listener = _GcOff()
    event.register("numba:compile", _gc_listener)


_setup()
