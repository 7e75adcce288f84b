"""assemblers._runtime: the Numba cache stamp covers every kernel source, in sub-packages too."""

import shutil
from pathlib import Path

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
