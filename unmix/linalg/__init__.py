"""Linear solvers shared by the methods.

- :func:`pcg`: preconditioned conjugate gradients with MATLAB's semantics
  (minimum-residual iterate on early stop).
- :func:`grid_nested_dissection`, :class:`SeparatorTree`: fill-reducing
  orderings of pixel-grid matrices.
- :func:`factorize`: multifrontal factorisation on such an ordering
  (Cholesky fronts, a pivoted dense root for indefinite matrices).
"""

from .multifrontal import MultifrontalFactor, NotPositiveDefiniteError, factorize
from .ordering import SeparatorTree, grid_nested_dissection, stencil_radius
from .pcg import PCGResult, pcg

__all__ = [
    "MultifrontalFactor",
    "NotPositiveDefiniteError",
    "PCGResult",
    "SeparatorTree",
    "factorize",
    "grid_nested_dissection",
    "pcg",
    "stencil_radius",
]
