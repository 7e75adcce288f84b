"""assemblers._runtime: the Numba cache stamp covers every kernel source, in sub-packages too."""

import gc
import shutil
from pathlib import Path

import numpy as np
import pytest
from numba import njit
from numba.core import event
from numba.core.errors import TypingError

import assemblers.geometry.kernels  # noqa: F401  (registers gc_off_while_compiling's listener)
from assemblers import _runtime

ROOT = Path(_runtime.__file__).resolve().parent.parent


def _copy(tmp_path):
    for pkg in ("assemblers", "sims"):
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_a_kernel_file_in_a_subpackage_changes_the_stamp(tmp_path):
    """Editing a kernel two folders down (assemblers/ik/evaluate.py, assemblers/kinematics/
    kernels.py), or adding one in a new sub-package, gives a new stamp (the stamp before this
    change globbed the top folders only); a file without kernels does not change it."""
    root = _copy(tmp_path)
    stamp = _runtime.kernel_stamp(root)
    assert stamp == _runtime.kernel_stamp(ROOT)  # the copy hashes as the installation
    for rel in ("assemblers/ik/evaluate.py", "assemblers/kinematics/kernels.py"):
        path = root / rel
        text = path.read_text()
        path.write_text(text + "\n# edited\n")
        assert _runtime.kernel_stamp(root) != stamp, rel
        path.write_text(text)
        assert _runtime.kernel_stamp(root) == stamp
    (root / "assemblers" / "newpkg").mkdir()
    (root / "assemblers" / "newpkg" / "k.py").write_text("from numba import njit\n\n\n@njit\ndef f():\n"
                                                        "    return 1\n")
    assert _runtime.kernel_stamp(root) != stamp
    (root / "assemblers" / "newpkg" / "k.py").write_text("def f():\n    return 1\n")
    assert _runtime.kernel_stamp(root) == stamp


def test_the_garbage_collector_is_off_while_a_kernel_compiles_and_back_as_it_was():
    """gc_off_while_compiling (registered by the kernel modules): during the outermost compile
    and the nested compiles of the kernels it reaches the collector is off; afterwards it is as
    it was, on or off, also when the compile fails."""
    seen = []

    class Probe(event.Listener):  # registered after the package's listener: sees its effect
        def on_start(self, e):
            seen.append((e.data["dispatcher"].py_func.__name__, gc.isenabled()))

        def on_end(self, e):
            pass

    @njit
    def inner(x):
        return 2.0 * x

    @njit
    def outer(x):
        return inner(x) + 1.0

    @njit
    def broken(x):
        return x.no_such_attribute

    probe = Probe()
    event.register("numba:compile", probe)
    try:
        assert gc.isenabled()
        assert outer(np.float64(1.0)) == 3.0
        assert seen == [("outer", False), ("inner", False)]
        assert gc.isenabled()
        with pytest.raises(TypingError):
            broken(1.0)
        assert gc.isenabled()
        gc.disable()
        try:
            assert outer(np.int64(2)) == 5.0  # a new specialization: compiles again
            assert not gc.isenabled()
        finally:
            gc.enable()
    finally:
        event.unregister("numba:compile", probe)
