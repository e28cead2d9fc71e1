"""A sparse direct factorisation on the GPU: cuDSS through nvmath-python.

The GPU twin of :mod:`unmix.linalg.multifrontal` for the solves that need an exact
factor: the shift-invert eigensolver (a symmetric *indefinite* ``L − σI``, factored
once and solved about 40 times with 8 right-hand sides) and closed-form matting's
reduced system (symmetric positive definite). cuDSS reorders (nested dissection),
factors and solves on the device; the factor is planned and computed once and every
solve reuses it, as :class:`~unmix.linalg.multifrontal.MultifrontalFactor` is reused
on the CPU.

Symmetric matrices are handed to cuDSS as their lower triangle. An indefinite one is
factored as LDLᵀ with pivoting inside cuDSS's supernodes; where that is not accurate
enough (cuDSS perturbs tiny pivots rather than exchanging rows across supernodes), the
factor is rejected by a backward-error check on a random right-hand side and the
matrix is factored again by pivoted LU (:attr:`CuDSSFactor.kind` says which one
stands).

nvmath-python and cuDSS are the ``gpu`` extra (``nvmath-python[cu12]`` or
``[cu13]``, which bring ``nvidia-cudss``). :func:`cudss_available` tells whether they
load; the eigensolver falls back to the CPU factor without them.
"""

from __future__ import annotations

import functools
import logging

import numpy as np

log = logging.getLogger("unmix")

__all__ = ["CuDSSFactor", "cudss_available"]

#: Largest accepted backward error ‖A x − b‖ / (‖A‖₁ ‖x‖ + ‖b‖) of a factor's solve.
_BACKWARD_ERROR_MAX = 1e-10


@functools.lru_cache(maxsize=None)
def _nvmath_sparse():
    """The ``nvmath.sparse.advanced`` module, or None where it (or cuDSS) does not load."""
    try:
        from nvmath.bindings import cudss
        from nvmath.sparse import advanced

        cudss.get_property(0)  # loads libcudss: a missing library fails here, not later
    except Exception as exc:  # ImportError, or the loader's own error for a missing library
        log.info("cuDSS unavailable: %s", exc)
        return None
    return advanced


def cudss_available():
    """Whether nvmath-python and the cuDSS library load (the GPU may still be absent)."""
    return _nvmath_sparse() is not None


class CuDSSFactor:
    """A cuDSS factorisation of a sparse matrix, solved with a fixed number of columns.

    Parameters
    ----------
    A : scipy.sparse matrix or cupyx.scipy.sparse matrix, shape (n, n)
        The matrix (float64). For ``structure`` "spd" and "symmetric" it must be
        symmetric; only its lower triangle is read.
    structure : {"spd", "symmetric", "general"}
        "spd": Cholesky. "symmetric": LDLᵀ, with a fallback to LU when its backward
        error on a random right-hand side exceeds 1e-10 (see the module notes).
        "general": LU.
    n_rhs : int, optional
        Columns of every solve (1). The solver is planned for this width; other widths
        are solved in chunks of it.
    random_state : int, optional
        Seed of the right-hand side of the backward-error check.

    Attributes
    ----------
    kind : {"cholesky", "ldlt", "lu"}
        The factorisation that stands.
    nnz : int
        Stored entries of its factors (cuDSS's count).
    backward_error : float
        Its backward error on the check's right-hand side.

    Raises
    ------
    GPUUnavailableError
        If CuPy, a CUDA device, nvmath-python or cuDSS is missing.
    ValueError
        If ``A`` is not square or ``structure`` is unknown.
    numpy.linalg.LinAlgError
        For "spd" when cuDSS's Cholesky meets a non-positive pivot.
    """

    _KINDS = {"spd": "cholesky", "symmetric": "ldlt", "general": "lu"}

    def __init__(self, A, structure="symmetric", n_rhs=1, random_state=0):
        from .._backend import GPUUnavailableError, get_backend

        if structure not in self._KINDS:
            raise ValueError(f"structure must be 'spd', 'symmetric' or 'general', got {structure!r}")
        self._backend = backend = get_backend("gpu")
        self._advanced = _nvmath_sparse()
        if self._advanced is None:
            raise GPUUnavailableError(
                "the GPU factorisation needs nvmath-python with cuDSS: pip install "
                "'unmix[gpu]' (CUDA 12) or 'unmix[gpu-cuda13]' (CUDA 13)")
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"A must be square, got shape {A.shape}")
        self.n = int(A.shape[0])
        self.n_rhs = int(n_rhs)
        xp = backend.xp
        self._A = backend.csr(A)  # the full matrix, for the backward-error check
        self._rhs = xp.zeros((self.n, self.n_rhs), order="F")
        kind = self._KINDS[structure]
        self._solver = None
        try:
            self._solver = self._factor(kind)
            self.kind = kind
            self.backward_error = self._check(random_state)
            accurate = self.backward_error <= _BACKWARD_ERROR_MAX
        except np.linalg.LinAlgError:
            if structure != "symmetric":
                raise
            accurate = False
        if structure == "symmetric" and not accurate:
            log.info("cuDSS LDLᵀ rejected (backward error %.2e, bound %.0e): factoring by LU",
                     getattr(self, "backward_error", np.nan), _BACKWARD_ERROR_MAX)
            if self._solver is not None:
                self._solver.free()
            self._solver = self._factor("lu")
            self.kind = "lu"
            self.backward_error = self._check(random_state)
        log.info("cuDSS %s factor of n=%d: backward error %.1e", self.kind, self.n,
                 self.backward_error)

    def _factor(self, kind):
        advanced, backend = self._advanced, self._backend
        matrix_type = {"cholesky": advanced.DirectSolverMatrixType.SPD,
                       "ldlt": advanced.DirectSolverMatrixType.SYMMETRIC,
                       "lu": advanced.DirectSolverMatrixType.GENERAL}[kind]
        if kind == "lu":
            view, A = advanced.DirectSolverMatrixViewType.FULL, self._A
        else:
            view = advanced.DirectSolverMatrixViewType.LOWER
            A = backend.sparse.tril(self._A, format="csr")
        A.sort_indices()
        options = advanced.DirectSolverOptions(sparse_system_type=matrix_type,
                                               sparse_system_view=view)
        solver = advanced.DirectSolver(A, self._rhs, options=options)
        solver.plan()
        info = solver.factorize()
        # cuDSS reports a zero or (Cholesky) non-positive pivot in its info code.
        if info.info != 0:
            solver.free()
            raise np.linalg.LinAlgError(
                f"cuDSS {kind} factorisation failed (cuDSS info {info.info}): the matrix is "
                + ("not positive definite" if kind == "cholesky" else "singular"))
        self.nnz = int(info.lu_nnz)
        return solver

    def _check(self, random_state):
        """Backward error ‖A x − b‖ / (‖A‖₁ ‖x‖ + ‖b‖) of a solve with a random b."""
        xp = self._backend.xp
        b = xp.asarray(np.random.default_rng(random_state).standard_normal((self.n, self.n_rhs)))
        x = self.solve(b)
        residual = float(xp.linalg.norm(self._A @ x - b))
        norm_A = float(abs(self._A).sum(axis=0).max())
        return residual / (norm_A * float(xp.linalg.norm(x)) + float(xp.linalg.norm(b)))

    def solve(self, B):
        """``A⁻¹ B`` for a CuPy array B of shape (n,) or (n, k); returns a new CuPy array."""
        xp = self._backend.xp
        B = xp.asarray(B, dtype=np.float64)
        vector = B.ndim == 1
        B2 = B[:, None] if vector else B
        if B2.shape[0] != self.n:
            raise ValueError(f"B must have {self.n} rows, got shape {B.shape}")
        k, w = B2.shape[1], self.n_rhs
        out = xp.empty((self.n, k), order="F")
        for c0 in range(0, k, w):
            c1 = min(c0 + w, k)
            # The solver reads its planned right-hand-side buffer: fill it in place (a
            # zero-padded last chunk for widths that are not multiples of n_rhs).
            self._rhs[:, : c1 - c0] = B2[:, c0:c1]
            if c1 - c0 < w:
                self._rhs[:, c1 - c0:] = 0.0
            out[:, c0:c1] = self._solver.solve()[:, : c1 - c0]
        return out[:, 0] if vector else out

    def free(self):
        """Release the device memory of the factor now (otherwise when collected)."""
        self._solver.free()

    def __del__(self):
        solver = getattr(self, "_solver", None)  # None where __init__ failed
        if solver is not None:
            try:
                solver.free()
            except Exception:  # interpreter shutdown: the CUDA context may be gone
                pass
