"""Smallest-magnitude eigenpairs of the (indefinite) SSS Laplacian.

Spec: ``spec/sss.md`` §8 (the Laplacian: symmetric, ``L·1 = 0``, *indefinite* because
the semantic affinity W_S has negative weights), §9 (the K = 100 eigenpairs of smallest
magnitude |λ|, released code ``eigs(L, 100, 'SM')``) and §18 (accelerated eigensolvers,
validated against shift-invert Lanczos with an LU factorisation).

Methods
-------
``"shift-invert"``
    Shift-invert Lanczos (ARPACK through :func:`scipy.sparse.linalg.eigsh`) on
    ``(L - σI)⁻¹`` with σ = −1e-6 (§9; σ = 0 would factor an exactly singular matrix).
    ``L − σI`` is indefinite, so it is factored by SuperLU with (threshold) diagonal
    pivoting in symmetric mode.  The cost is dominated by fill, so when the pixel grid
    ``shape=(H, W)`` is known we order the matrix ourselves: a geometric nested
    dissection of the grid whose separators are as wide as the stencil radius, with the
    few pixels that carry long-range (superpixel) edges ordered last.  At 480×640 this
    gives ~60 M non-zeros per triangle where SuperLU's own COLAMD ordering takes minutes.
    With that (multifrontal) factor the Lanczos iteration is our thick-restart *block*
    Krylov–Schur (:mod:`unmix.linalg.krylov_schur`, blocks of 8 columns): a solve with
    8 right-hand sides costs ~0.2× eight single solves per column, and the
    reorthogonalisation runs as BLAS-3 on the basis instead of ARPACK's BLAS-2.  The
    iteration runs in the factor's elimination order, so a solve permutes nothing.  It
    converges on the residual of L itself, ‖Lv − λv‖, evaluated exactly from the Krylov
    relation for one sparse product with the residual block, which is skipped until a
    cheap bound says convergence is near.  The memory-bound parts run on two threads:
    the sweeps of each solve over the two halves of the dissection, the products with
    the basis over two halves of its vectors.  At 240×320 (coffee, k = 100) it needs 312
    column solves; on 2 cores the time splits into factorisation ~20 %, solves ~40 %,
    orthogonalisation and restarts ~25 %.  ARPACK remains for the SuperLU path
    (``eigensolver="arpack"`` selects it explicitly).
``"lobpcg"``
    Block LOBPCG (:func:`scipy.sparse.linalg.lobpcg`) preconditioned by a pyamg
    smoothed-aggregation V-cycle on the SPD matrix ``L + cI``.  LOBPCG returns the
    *algebraically* smallest pairs; we compute ``k + extra`` of them and keep the k of
    smallest magnitude, which is exact when the run-time check of §9 ("Cholesky
    variant") holds; otherwise ``extra`` is enlarged and the solve repeated.
``"dense"``
    :func:`scipy.linalg.eigh` of the dense matrix; for tiny problems and tests.
``"auto"``
    ``"dense"`` for N ≤ 2000, else ``"shift-invert"`` (the faster one in every
    measurement; see ``benchmarks/`` and the module notes in the lead's report).
"""

from __future__ import annotations

import logging
import numbers
import warnings

import numpy as np

from .._backend import get_backend, like_input, to_host
from .._checks import choice, flag, grid_shape, integer, positive, real, seed
from ..exceptions import ConvergenceWarning

__all__ = ["smallest_eigenpairs", "eigen_residuals"]

log = logging.getLogger("unmix")

_METHODS = ("auto", "shift-invert", "lobpcg", "dense")
_DENSE_MAX_N = 2000
# Block Krylov–Schur (shift-invert with the multifrontal factor): columns per block solve
# and spare basis columns beyond 2(k + 2) (ncv = 244 for k = 100: a 0.6 GB basis at
# 480×640).  Measured at 240×320, k = 100, loaded 2-core machine: b = 8 needs 312
# column solves, b = 16 400 and b = 12 360, all within the noise of one another in
# time (ncv 244-352 likewise); b = 8 needs the least memory.  With the two-thread sweeps
# and basis products, on a quiet machine: b = 8 4.7–5.0 s, b = 12 5.0–5.6 s, b = 16
# 5.7–5.9 s.  At 480×640 (older kernels): b = 8 ~330 solves, b = 16 ~435; b = 4 and 2
# pay more per column.
_KS_BLOCK = 8
_KS_NCV_EXTRA = 40


# --------------------------------------------------------------------------- validation
def _validate(L, k, method, shape, tol):
    import scipy.sparse as sp

    if sp.issparse(L):
        L = sp.csr_matrix(L)
        data = L.data
    elif isinstance(L, np.ndarray):
        if L.ndim != 2:
            raise ValueError(f"L must be a 2-D matrix, got an array with ndim={L.ndim}")
        L = sp.csr_matrix(L)
        data = L.data
    else:
        raise TypeError(
            f"L must be a scipy.sparse matrix/array or a 2-D numpy array, got {type(L).__name__}"
        )
    if not np.issubdtype(L.dtype, np.floating) and not np.issubdtype(L.dtype, np.integer):
        raise TypeError(f"L must have a real dtype, got {L.dtype}")
    L = L.astype(np.float64)
    data = L.data
    n, m = L.shape
    if n != m:
        raise ValueError(f"L must be square, got shape {L.shape}")
    if n < 2:
        raise ValueError(f"L must be at least 2×2, got shape {L.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError("L has non-finite entries (NaN or inf); expected finite values")
    scale = float(np.abs(data).max()) if data.size else 0.0
    if scale > 1e150 or 0 < scale < 1e-150:
        # Norms and Gram products of the eigensolvers square the entries' scale.
        raise ValueError(
            f"L has entries up to {scale:.3g} in magnitude, outside [1e-150, 1e150], where "
            "the eigensolvers' products overflow or underflow float64; scale L first (the "
            "eigenvectors are unchanged, the eigenvalues scale with it)")
    asym = abs(L - L.T)
    asym_max = float(asym.max()) if asym.nnz else 0.0
    if asym_max > 1e-10 * max(scale, 1e-300):
        raise ValueError(
            f"L must be symmetric: max |L - L^T| = {asym_max:.3g} exceeds 1e-10 × max |L| "
            f"= {1e-10 * scale:.3g}"
        )
    k = integer("k", k, 1, n - 1)
    choice("method", method, _METHODS)
    if shape is not None:
        shape = grid_shape(shape, n)
    positive("tol", tol)
    # The symmetric part only: removes rounding asymmetry below the 1e-10 test.
    L = ((L + L.T) * 0.5).tocsr()
    L.sum_duplicates()
    return L, k, shape, float(tol)


def eigen_residuals(L, eigvals, eigvecs):
    """Residual norms ``‖L v_i − λ_i v_i‖₂ / ‖v_i‖₂`` of eigenpairs.

    Parameters
    ----------
    L : sparse matrix, shape (N, N)
        A SciPy matrix with NumPy eigenvectors, or a ``cupyx.scipy.sparse`` matrix with
        CuPy ones.
    eigvals : ndarray, shape (k,)
    eigvecs : ndarray or cupy.ndarray, shape (N, k)

    Returns
    -------
    ndarray, shape (k,)
        On the host.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from unmix.spectral import eigen_residuals
    >>> L = sp.diags([1.0, 2.0, 3.0]).tocsr()
    >>> eigen_residuals(L, np.array([1.0, 2.5]), np.eye(3)[:, :2])
    array([0. , 0.5])
    """
    xp = get_backend(None, eigvecs).xp
    for name, value, ndim in (("L", L, 2), ("eigvecs", eigvecs, 2), ("eigvals", eigvals, 1)):
        # Checked where the arrays are (np.shape and dtype read a CuPy array's in place).
        shape = np.shape(value) if hasattr(value, "shape") else ()
        kind = getattr(getattr(value, "dtype", None), "kind", None)
        if len(shape) != ndim or kind not in ("f", "i", "u"):
            raise ValueError(f"{name} must be a real {ndim}-D array or matrix, got "
                             f"{type(value).__name__} of shape {shape or None}")
    n, k = np.shape(eigvecs)
    if np.shape(L) != (n, n) or np.shape(eigvals) != (k,):
        raise ValueError(f"L must be (N, N), eigvecs (N, k) and eigvals (k,), got "
                         f"{np.shape(L)}, {np.shape(eigvecs)} and {np.shape(eigvals)}")
    V = xp.asarray(eigvecs)
    if not (bool(xp.isfinite(V).all()) and np.isfinite(to_host(eigvals)).all()):
        raise ValueError("eigvecs and eigvals must be finite, got NaN or infinite values")
    return _residual_norms(L, eigvals, V, xp)


def _residual_norms(L, eigvals, V, xp):
    """:func:`eigen_residuals` of checked inputs (the solvers' own iterates: a NaN there
    is the solver's failure, reported as non-convergence, not a bad argument)."""
    R = L @ V - V * xp.asarray(eigvals)[None, :]
    return to_host(xp.linalg.norm(R, axis=0) / xp.maximum(xp.linalg.norm(V, axis=0), 1e-300))


# ------------------------------------------------------------------------ factorisation
def _factorize_shifted(A, shape):
    """Factor ``A = L − σI``; return ``(solve, factor)``: a function solving it for a
    vector or a block of vectors, and the :class:`MultifrontalFactor` (None for SuperLU).

    With the pixel grid known, a multifrontal factorisation on a grid nested dissection
    (:mod:`unmix.linalg.ordering`, :mod:`unmix.linalg.multifrontal`): the long-range
    (superpixel centroid) pixels and the top separator form the root front, so every other
    pivot block is a principal submatrix of the positive definite ``L_M − σI`` (σ < 0) and
    is factored by dense Cholesky, while the indefinite root is factored by pivoted LU.
    Otherwise, or if that structure is missing (no stencil radius, or a non-root block
    that is not positive definite), SuperLU with a minimum-degree ordering.
    """
    import scipy.sparse.linalg as sla

    if shape is not None:
        from ..linalg.multifrontal import NotPositiveDefiniteError, factorize
        from ..linalg.ordering import grid_nested_dissection

        try:
            tree = grid_nested_dissection(shape, A)
            factor = factorize(A, tree)
        except (ValueError, NotPositiveDefiniteError) as exc:
            log.info("smallest_eigenpairs: grid factorisation unavailable (%s); using SuperLU",
                     exc)
        else:
            log.info("smallest_eigenpairs: %r", factor)
            return factor.solve, factor
    # SymmetricMode + a small diagonal-pivot threshold keep SuperLU on the diagonal (no
    # extra fill) unless a pivot is really tiny.
    lu = sla.splu(A.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.01,
                  options=dict(SymmetricMode=True))

    def solve(b):
        return lu.solve(np.asfortranarray(b))
    return solve, None


# ----------------------------------------------------------------------------- methods
def _select_smallest_magnitude(vals, vecs, k, backend=None):
    o = np.argsort(np.abs(vals), kind="stable")[:k]
    o = o[np.argsort(vals[o], kind="stable")]
    if backend is not None:
        o = backend.asarray(o, dtype=np.int64)
    return vals[to_host(o)], vecs[:, o]


def _rayleigh_ritz(L, Z):
    """Rayleigh–Ritz of L on span(Z); returns Ritz values and vectors (orthonormal)."""
    import scipy.linalg as la

    Q, _ = np.linalg.qr(Z)
    G = Q.T @ (L @ Q)
    theta, Y = la.eigh((G + G.T) * 0.5)
    return theta, Q @ Y


def _solve_dense(L, k, tol, rng, maxiter, backend=None, **_):
    import scipy.linalg as la

    vals, vecs = la.eigh(L.toarray())
    return _select_smallest_magnitude(vals, vecs, k)


def _solve_shift_invert(L, k, tol, rng, maxiter, shape=None, sigma=-1e-6, ncv=None,
                        eigensolver="auto", block_size=None, backend=None, **_):
    n = L.shape[0]
    if eigensolver not in ("auto", "arpack", "krylov-schur"):
        raise ValueError(f"eigensolver must be 'auto', 'arpack' or 'krylov-schur', got "
                         f"{eigensolver!r}")
    if backend.is_gpu and eigensolver == "arpack":
        raise ValueError("eigensolver='arpack' runs on the CPU only; use 'krylov-schur' or "
                         "'auto' with device='gpu'")
    if block_size is not None and (isinstance(block_size, bool) or not isinstance(
            block_size, numbers.Integral) or block_size < 1):
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    import scipy.sparse as sp

    A = (L - sigma * sp.identity(n, format="csr")).tocsr()
    # Two spare pairs so that the final choice by |λ| (not by |λ − σ|) is exact.
    kk = min(k + 2, n - 1)
    b = _KS_BLOCK if block_size is None else block_size
    if backend.is_gpu and kk + 2 * b <= n:
        return _shift_invert_gpu(A, k, kk, tol, rng, maxiter, shape, sigma, ncv, b, backend)
    solve, factor = _factorize_shifted(A, shape)
    if eigensolver == "auto":
        # The block method needs cheap multi-column solves: the multifrontal factor's
        # block sweeps cost ~0.2× a single solve per column (8 columns); SuperLU's do
        # not.
        eigensolver = "krylov-schur" if factor is not None else "arpack"
    if eigensolver == "krylov-schur" and kk + 2 * b <= n:
        if factor is not None:
            # Iterate in the factor's elimination order (no permutation per solve); only
            # the residual products and the final vectors go back to the original order.
            iperm = factor.tree.inverse_perm()

            def solve(X):
                return factor.solve(X, permuted=True)
        else:
            iperm = slice(None)
        return _shift_invert_krylov_schur(A, k, kk, tol, rng, maxiter, solve, iperm, sigma,
                                          ncv, b, backend)
    # ARPACK, also for matrices too small for blocks of b (tiny test matrices).
    return _shift_invert_arpack(L, k, kk, tol, rng, maxiter, solve, sigma, ncv)


def _shift_invert_gpu(A, k, kk, tol, rng, maxiter, shape, sigma, ncv, b, backend):
    """Block Krylov–Schur on the GPU: the basis in CuPy arrays, ``A = L − σI`` factored
    by cuDSS on the device (LDLᵀ; LU if its backward error is too large, see
    :class:`~unmix.linalg.cudss.CuDSSFactor`).

    Without nvmath-python/cuDSS the factor is the CPU's multifrontal one (or SuperLU),
    and each block solve travels to the host and back: correct, but the solves run at
    the CPU's speed.
    """
    from ..linalg.cudss import CuDSSFactor, cudss_available

    if cudss_available():
        factor = CuDSSFactor(A, "symmetric", n_rhs=b, random_state=int(rng.integers(2**31)))
        log.info("smallest_eigenpairs: cuDSS %s factor (backward error %.1e)", factor.kind,
                 factor.backward_error)
        return _shift_invert_krylov_schur(backend.csr(A), k, kk, tol, rng, maxiter,
                                          factor.solve, slice(None), sigma, ncv, b, backend)
    log.warning("smallest_eigenpairs(device='gpu'): nvmath-python with cuDSS is not "
                "installed, so the shift-invert solves run on the CPU "
                "(pip install 'unmix[gpu]')")
    host_solve, factor = _factorize_shifted(A, shape)
    if factor is not None:
        iperm = backend.asarray(factor.tree.inverse_perm(), dtype=np.int64)

        def solve(X):
            return backend.asarray(factor.solve(to_host(X), permuted=True))
    else:
        iperm = slice(None)

        def solve(X):
            return backend.asarray(host_solve(to_host(X)))
    return _shift_invert_krylov_schur(backend.csr(A), k, kk, tol, rng, maxiter, solve, iperm,
                                      sigma, ncv, b, backend)


def _shift_invert_krylov_schur(A, k, kk, tol, rng, maxiter, solve, iperm, sigma, ncv, b,
                               backend):
    """Block Krylov–Schur on ``T = (L − σI)⁻¹`` applied by ``solve``, whose vectors are
    in the order ``iperm`` undoes; ``A = L − σI`` on ``backend``'s device."""
    from ..linalg.krylov_schur import block_krylov_schur

    n = A.shape[0]

    def key(theta):
        # Rank Ritz values θ of (L − σI)⁻¹ by the |λ| = |σ + 1/θ| they stand for.
        with np.errstate(divide="ignore"):
            return np.abs(sigma + 1.0 / theta)

    ks_tol = 0.1 * tol
    norm_AVp = []

    def residual(theta, Vp, S):
        # T x − θx = Vp s  ⇒  L x − λ x = −(L − σI) Vp s / θ: the residual of the
        # original problem for the price of one sparse product with b columns.  That
        # product is skipped while the bound ‖A Vp‖₂ ‖s‖ / |θ|, with the norm of the last
        # block (it varies by < 2× from block to block), misses the tolerance by more
        # than 4×: the returned estimates then keep the iteration going, and the
        # iteration stops only on exact residuals.
        base = np.linalg.norm(S, axis=0) / np.maximum(np.abs(theta), 1e-300)
        if norm_AVp and base.max() * norm_AVp[-1] > 4.0 * ks_tol:
            return base * norm_AVp[-1]
        P = A @ Vp[iperm]
        G = to_host(P.T @ P)
        norm_AVp.append(np.sqrt(max(np.linalg.eigvalsh(G)[-1], 0.0)))
        r2 = np.einsum("iq,ij,jq->q", S, G, S)
        return np.sqrt(np.maximum(r2, 0.0)) / np.maximum(np.abs(theta), 1e-300)

    if ncv is None:
        ncv = min(n - b, kk + max(kk, 8 * b) + _KS_NCV_EXTRA)
    mu, V, info = block_krylov_schur(
        solve, n, kk, block_size=b, ncv=ncv, tol=ks_tol,
        maxiter=maxiter if maxiter is not None else 100, random_state=rng, key=key,
        residual=residual, warn=False, return_info=True, device=backend.device)
    log.info("smallest_eigenpairs: block Krylov–Schur b=%d ncv=%d: %d column solves, "
             "%d restarts, %d/%d converged, %d exact residual checks", b, ncv,
             info.n_applies, info.n_restarts, info.n_converged, kk, len(norm_AVp))
    vals, vecs = _select_smallest_magnitude(sigma + 1.0 / mu, V, k, backend)
    return vals, vecs[iperm]


def _shift_invert_arpack(L, k, kk, tol, rng, maxiter, solve, sigma, ncv):
    import scipy.sparse.linalg as sla

    n = L.shape[0]
    if ncv is None:
        ncv = min(n, max(2 * kk + 1, kk + 32))
    op = sla.LinearOperator((n, n), matvec=solve, matmat=solve, dtype=np.float64)
    # ARPACK's test ‖A⁻¹x − μx‖ ≤ tol_a·|μ| gives ‖Lx − λx‖ ≤ ‖L − σI‖·tol_a, so we
    # divide the caller's residual tolerance by a norm bound (max absolute row sum).
    norm_bound = float(abs(L).sum(axis=1).max()) + abs(sigma)
    tol_a = max(tol / norm_bound * 0.1, np.finfo(float).eps)
    v0 = rng.standard_normal(n)
    try:
        mu, V = sla.eigsh(op, k=kk, which="LM", tol=tol_a, ncv=ncv, v0=v0,
                          maxiter=maxiter if maxiter is not None else None)
    except sla.ArpackNoConvergence as exc:
        # Best iterate: ARPACK only hands back the converged pairs, so complete them by a
        # Rayleigh–Ritz on [converged, one shift-invert step on a random block].
        Vc = exc.eigenvectors if exc.eigenvectors is not None else np.zeros((n, 0))
        extra = kk - Vc.shape[1] + 8
        Z = np.hstack([Vc, solve(rng.standard_normal((n, extra)))])
        theta, X = _rayleigh_ritz(L, Z)
        return _select_smallest_magnitude(theta, X, k)
    lam = sigma + 1.0 / mu
    return _select_smallest_magnitude(lam, V, k)


def _amg_preconditioner(L, shift):
    import pyamg
    import scipy.sparse as sp

    n = L.shape[0]
    A = (L + shift * sp.identity(n, format="csr")).tocsr()
    ml = pyamg.smoothed_aggregation_solver(A, B=np.ones((n, 1)), max_coarse=2000)
    return ml.aspreconditioner(cycle="V")


def _solve_lobpcg(L, k, tol, rng, maxiter, X0=None, extra=None, amg_shift=None, restart=40,
                  **_):
    import scipy.sparse.linalg as sla

    n = L.shape[0]
    if maxiter is None:
        maxiter = 500
    if amg_shift is None:
        # A shift of the order of the wanted eigenvalues keeps L + cI SPD (the negative
        # eigenvalues of §6 are ~1e-3 of the diagonal scale) without spoiling the AMG
        # approximation of the low modes.
        amg_shift = 1e-2 * float(np.abs(L.diagonal()).mean())
    M = _amg_preconditioner(L, amg_shift)
    if extra is None:
        extra = max(10, k // 5)
    for _ in range(3):
        m = min(k + extra, n - 1)
        if 5 * m >= n:
            # lobpcg's Rayleigh–Ritz would be larger than the matrix itself.
            return _solve_dense(L, k, tol, rng, maxiter)
        X = rng.standard_normal((n, m))
        if X0 is not None:
            q = min(X0.shape[1], m)
            X[:, :q] = X0[:, :q]
        # The constant vector is exactly in the null space (L·1 = 0, §8): seed it.
        X[:, 0] = 1.0
        # SciPy's lobpcg bails out (returning its best iterate) when its Gram matrices
        # become ill-conditioned, which happens long before a 1e-6 residual on these
        # clustered spectra; restarting from the best iterate resumes progress.
        done = 0
        while True:
            chunk = min(restart, maxiter - done)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # we report convergence ourselves
                vals, X = sla.lobpcg(L, X, M=M, largest=False, tol=tol, maxiter=chunk)
            done += chunk
            res = _residual_norms(L, vals, X, np)
            if res.max() <= tol or done >= maxiter:
                break
        vals, vecs = np.asarray(vals), X
        o = np.argsort(vals)
        vals, vecs = vals[o], vecs[:, o]
        sel_vals, sel_vecs = _select_smallest_magnitude(vals, vecs, k)
        # §9 check: the k of smallest |λ| among the m algebraically smallest are the
        # global ones iff none of them exceeds the largest computed λ_m ≤ λ_{m+1}.
        if np.abs(sel_vals).max() <= vals[-1] or m >= n - 1:
            return sel_vals, sel_vecs
        extra *= 2
    warnings.warn(
        "lobpcg: the most negative eigenvalues are larger in magnitude than the computed "
        "positive ones; the smallest-magnitude set may be incomplete",
        ConvergenceWarning, stacklevel=3)
    return sel_vals, sel_vecs


_SOLVERS = {"dense": _solve_dense, "shift-invert": _solve_shift_invert, "lobpcg": _solve_lobpcg}


# ------------------------------------------------------------------------------ public
def smallest_eigenpairs(L, k=100, *, method="auto", shape=None, tol=1e-6, random_state=0,
                        maxiter=None, sigma=-1e-6, return_residuals=False, device=None,
                        **options):
    """The k eigenpairs of smallest magnitude ``|λ|`` of a sparse symmetric matrix.

    Computes the K = 100 eigenpairs used by semantic soft segmentation (spec §9, released
    code ``eigs(L, 100, 'SM')``) of the unnormalised Laplacian of §8.  L may be
    indefinite (the negative semantic affinities of §6 give eigenvalues down to about
    −3e-3); slightly negative eigenvalues belong to the set, and so does λ = 0
    (``L·1 = 0``).

    Parameters
    ----------
    L : scipy.sparse matrix or ndarray, shape (N, N)
        Real symmetric matrix (asymmetry up to 1e-10·max|L| is tolerated and removed).
    k : int, default 100
        Number of eigenpairs, ``1 <= k < N``.
    method : {"auto", "shift-invert", "lobpcg", "dense"}, default "auto"
        ``"shift-invert"``: ARPACK Lanczos on ``(L − σI)⁻¹`` with a SuperLU factorisation
        (§9). ``"lobpcg"``: LOBPCG with a pyamg smoothed-aggregation preconditioner
        (§18). ``"dense"``: LAPACK on the dense matrix (tiny N only). ``"auto"``:
        ``"dense"`` for N ≤ 2000, else ``"shift-invert"`` (fastest when measured).
    shape : (H, W), optional
        Pixel grid of L (row-major pixels, p = y·W + x; DESIGN.md §3). When given, the
        shift-invert factorisation uses a grid nested-dissection ordering with the
        long-range (superpixel centroid) pixels last, which cuts fill and time many-fold.
    tol : float, default 1e-6
        Target for the largest residual ``‖L v − λ v‖₂`` over the returned unit
        eigenvectors. A :class:`~unmix.exceptions.ConvergenceWarning` is issued when the
        returned pairs miss it.
    random_state : int or numpy.random.Generator, default 0
        Seed of the starting vectors (same inputs + seed → same output).
    maxiter : int, optional
        Iteration limit of the iterative method (Krylov–Schur or ARPACK restarts, LOBPCG
        iterations).
    sigma : float, default -1e-6
        Shift of the shift-invert method. Not exactly 0: ``L`` is singular (§9).
    return_residuals : bool, default False
        Also return the residual norms of the pairs.
    device : {None, "cpu", "gpu"}, optional
        Where to compute (see :mod:`unmix._backend`): None runs where L is (a
        ``cupyx.scipy.sparse`` matrix → GPU). On the GPU, shift-invert runs block
        Krylov–Schur with its basis on the device and ``L − σI`` factored by cuDSS
        (nvmath-python, the ``gpu`` extra; without it the CPU factor does the solves);
        ``"dense"`` runs on the host; ``"lobpcg"`` and ARPACK are CPU-only. The
        eigenvectors come back as L is: NumPy for a SciPy matrix, CuPy for a cupyx one.
    **options
        Method-specific. Shift-invert: ``eigensolver`` (``"auto"``, ``"krylov-schur"``,
        ``"arpack"``; auto = block Krylov–Schur on the multifrontal factor, i.e. when
        ``shape`` is given, else ARPACK), ``block_size`` (Krylov–Schur, default 8),
        ``ncv`` (basis size). LOBPCG: ``X0``, ``extra``, ``amg_shift``.

    Returns
    -------
    eigvals : ndarray, shape (k,)
        Eigenvalues, ascending.
    eigvecs : ndarray, shape (N, k)
        Orthonormal eigenvectors, column i belonging to ``eigvals[i]``. Signs, and
        rotations inside (near-)degenerate eigenspaces, are arbitrary (§9): compare
        subspaces, not columns.
    residuals : ndarray, shape (k,)
        Only with ``return_residuals=True``: ``‖L v_i − λ_i v_i‖₂``.

    Raises
    ------
    TypeError
        If L is not a matrix of real numbers or k is not an integer.
    ValueError
        If L is not square, not symmetric or not finite, if k is out of range, if the
        method is unknown, or if shape does not match N.

    Warns
    -----
    ConvergenceWarning
        If the largest residual exceeds ``tol``; the best pairs found are returned.

    Examples
    --------
    >>> vals, vecs = smallest_eigenpairs(L, 100, shape=(H, W))   # doctest: +SKIP
    """
    backend = get_backend(device, L)
    L_in = L
    L, k, shape, tol = _validate(to_host(L), k, method, shape, tol)
    n = L.shape[0]
    if method == "auto":
        method = "dense" if n <= _DENSE_MAX_N else "shift-invert"
    if backend.is_gpu and method == "lobpcg":
        raise ValueError("method='lobpcg' runs on the CPU only; use 'shift-invert' or 'auto' "
                         "with device='gpu'")
    rng = np.random.default_rng(seed("random_state", random_state))
    maxiter = None if maxiter is None else integer("maxiter", maxiter, 1)
    sigma = real("sigma", sigma)
    return_residuals = flag("return_residuals", return_residuals)
    vals, vecs = _SOLVERS[method](L, k, tol, rng, maxiter, shape=shape, sigma=sigma,
                                  backend=backend, **options)
    vals = np.ascontiguousarray(vals, dtype=np.float64)
    xp = backend.xp
    vecs = backend.asarray(vecs)
    vecs = vecs / xp.linalg.norm(vecs, axis=0)
    res = _residual_norms(backend.csr(L), vals, vecs, xp)
    worst = float(res.max())
    log.info("smallest_eigenpairs[%s]: N=%d k=%d λ∈[%.3g, %.3g] max residual %.2e",
             method, n, k, vals[0], vals[-1], worst)
    if not np.isfinite(worst) or worst > tol:
        warnings.warn(
            f"smallest_eigenpairs(method={method!r}) did not converge: max residual "
            f"‖Lv − λv‖ = {worst:.3g} > tol = {tol:.3g}; returning the best pairs found",
            ConvergenceWarning, stacklevel=2)
    vecs = like_input(vecs, L_in)
    if return_residuals:
        return vals, vecs, res
    return vals, vecs
