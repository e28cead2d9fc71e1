"""Linear solvers shared by the methods.

- :func:`pcg`: preconditioned conjugate gradients with MATLAB's semantics
  (minimum-residual iterate on early stop).
- :func:`grid_nested_dissection`, :class:`SeparatorTree`: fill-reducing
  orderings of pixel-grid matrices.
- :func:`factorize`: multifrontal factorisation on such an ordering
  (Cholesky fronts, a pivoted dense root for indefinite matrices).
- :func:`block_krylov_schur`: thick-restart block Krylov–Schur for extreme
  eigenpairs of a symmetric operator (shift-invert through a factor).
"""

from .krylov_schur import KrylovSchurInfo, block_krylov_schur
from .multifrontal import MultifrontalFactor, NotPositiveDefiniteError, factorize
from .ordering import SeparatorTree, grid_nested_dissection, stencil_radius
from .pcg import PCGResult, pcg

__all__ = [
    "KrylovSchurInfo",
    "MultifrontalFactor",
    "NotPositiveDefiniteError",
    "PCGResult",
    "SeparatorTree",
    "block_krylov_schur",
    "factorize",
    "grid_nested_dissection",
    "pcg",
    "stencil_radius",
]
