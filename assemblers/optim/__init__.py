"""Problem-agnostic numerical pieces in Numba: dense linear algebra (:mod:`.linalg`) and the
dual active-set QP (:mod:`.qp`).  They import nothing else of the package (below every layer
that uses them)."""
