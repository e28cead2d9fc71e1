"""Preconditioned conjugate gradients with MATLAB's ``pcg`` semantics.

SciPy's ``cg`` returns the *last* iterate when it stops early; MATLAB's and
Octave's ``pcg``, which the released SSS code relies on, return the iterate
of *smallest residual*. With the released code's truncated solves (at most
100 iterations per IRLS step) the two differ, so unmix implements the latter
(spec ``sss.md`` §12.3).

The routine uses only operators and array methods (``@``, ``.dot``,
``.copy``), so it runs unchanged on NumPy and CuPy arrays.
"""

import warnings
from dataclasses import dataclass
from typing import Any

from ..exceptions import ConvergenceWarning

__all__ = ["PCGResult", "pcg"]


@dataclass
class PCGResult:
    """Outcome of :func:`pcg`.

    Attributes
    ----------
    x : array
        The solution: the last iterate if converged, else the iterate of
        smallest residual.
    residual : float
        Its relative residual ‖b − A x‖ / ‖b‖, computed afresh.
    iterations : int
        Number of iterations run.
    converged : bool
        Whether the relative residual reached ``rtol``.

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.linalg import pcg
    >>> result = pcg(np.diag([1.0, 2.0, 4.0]), np.ones(3))
    >>> result.x, result.iterations, result.converged
    (array([1.  , 0.5 , 0.25]), 3, True)
    """

    x: Any
    residual: float
    iterations: int
    converged: bool


def pcg(A, b, x0=None, *, rtol=1e-6, maxiter=100, M=None, warn=True):
    """Solve A x = b for symmetric positive definite A by preconditioned CG.

    Parameters
    ----------
    A : matrix or LinearOperator or callable
        Anything with ``A @ x``, or a function ``x -> A x``.
    b : array, shape (n,)
    x0 : array, shape (n,), optional
        Initial guess (warm start); zero by default.
    rtol : float, optional
        Stop when ‖b − A x‖ ≤ rtol ‖b‖.
    maxiter : int, optional
        Largest number of iterations.
    M : callable, optional
        Applies the *inverse* of the preconditioner: ``z = M(r)``.
    warn : bool, optional
        Emit a :class:`~unmix.ConvergenceWarning` when ``rtol`` is not reached.

    Returns
    -------
    PCGResult

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from unmix.linalg import factorize, grid_nested_dissection
    >>> T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(16, 16))
    >>> A = (sp.kron(sp.eye(16), T) + sp.kron(T, sp.eye(16))).tocsr()   # Poisson, 16×16 grid
    >>> tree = grid_nested_dissection((16, 16), A, leaf_size=16)
    >>> from unmix.linalg import pcg
    >>> b = np.ones(256)
    >>> result = pcg(A, b, rtol=1e-8, maxiter=200)
    >>> result.converged, bool(result.residual <= 1e-8)
    (True, True)
    >>> pcg(A, b, M=factorize(A, tree).solve).iterations   # an exact preconditioner
    1
    """
    matvec = A if callable(A) and not hasattr(A, "__matmul__") else (lambda v: A @ v)
    if not (rtol > 0):
        raise ValueError(f"rtol must be positive, got {rtol!r}")
    if not (int(maxiter) == maxiter and maxiter >= 0):
        raise ValueError(f"maxiter must be a non-negative integer, got {maxiter!r}")
    norm_b = float(abs(b.dot(b)) ** 0.5)
    if norm_b == 0.0:
        return PCGResult(b * 0, 0.0, 0, True)
    x = b * 0 if x0 is None else x0.copy()
    r = b - matvec(x)
    norm_r = float(abs(r.dot(r)) ** 0.5)
    best_x, best_norm = x.copy(), norm_r
    iterations = 0
    p = rho_old = None
    while norm_r > rtol * norm_b and iterations < maxiter:
        z = r if M is None else M(r)
        rho = float(r.dot(z))
        if rho <= 0.0:  # the preconditioner is not positive definite here
            break
        p = z.copy() if p is None else z + (rho / rho_old) * p
        q = matvec(p)
        curvature = float(p.dot(q))
        if curvature <= 0.0:  # A is not positive definite along p
            break
        step = rho / curvature
        x += step * p
        r -= step * q
        rho_old = rho
        iterations += 1
        norm_r = float(abs(r.dot(r)) ** 0.5)
        if norm_r < best_norm:
            best_x, best_norm = x.copy(), norm_r
    converged = norm_r <= rtol * norm_b
    if not converged:
        x = best_x
    # The recursively updated residual drifts from the true one; report the truth.
    true_r = b - matvec(x)
    residual = float(abs(true_r.dot(true_r)) ** 0.5) / norm_b
    if warn and not converged:
        warnings.warn(
            f"pcg stopped after {iterations} iterations at relative residual "
            f"{residual:.3g} > rtol = {rtol:g}; returning the iterate of smallest residual",
            ConvergenceWarning,
            stacklevel=2,
        )
    return PCGResult(x, residual, iterations, converged)
