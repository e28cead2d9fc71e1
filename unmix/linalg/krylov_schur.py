"""Thick-restart block Krylov–Schur for a few extreme eigenpairs of a symmetric operator.

``block_krylov_schur(apply, n, k)`` computes the k eigenpairs of largest magnitude (or
any other "wanted" set, through ``key``) of a symmetric linear operator T given only as
``apply(X) = T X`` on blocks of b columns.  It is written for shift-invert eigensolvers
(``T = (A − σI)⁻¹`` applied by a sparse factorisation), where a solve with a few
right-hand sides costs little more than one, so blocks amortise both the solves and the
orthogonalisation.

Method (Stewart's Krylov–Schur decomposition, symmetric case, with blocks; see G. W.
Stewart, "A Krylov–Schur algorithm for large eigenproblems", SIMAX 23 (2001), and the
block Lanczos of Golub & Underwood).  The basis V_m (orthonormal, m columns) and the
residual block V₊ (b orthonormal columns, ⊥ V_m) satisfy

    T V_m = V_m H_m + V₊ B_m,        H_m = V_mᵀ T V_m symmetric (m×m),  B_m (b×m).

* **Expansion.** W = T V₊ loses its known components (the coupling B_m of the relation
  below, and its projection on V₊: the block Lanczos recurrence), then one pass of block
  classical Gram–Schmidt against [V_m, V₊] removes what rounding left, with a second
  pass only when a column loses much of its norm (DGKS; one pass alone would lose
  orthogonality when W lies mostly in span(V), which is why the known part goes
  first); a Cholesky QR (Householder where W is ill-conditioned) gives the next V₊.
  All of it is BLAS-3 on the basis, stored as rows (each vector contiguous).
* **Rayleigh–Ritz.** H_m = Y Θ Yᵀ; the Ritz pair (θ_i, V_m y_i) has the residual
  T x − θ x = V₊ s_i with s_i = B_m y_i, so its norm is ‖s_i‖ without touching V.
* **Thick restart** when the basis is full: keep the wanted Ritz vectors plus a few more,
  V_l ← V_m Y_l (in place, by row panels), H_l ← Θ_l (diagonal), B_l ← B_m Y_l (a full
  b×l "arrow" coupling), and V₊ unchanged — the relation above holds again exactly.
* **Convergence** of the wanted pairs is tested after every expansion on the cheap
  residuals (or on a caller's residual, e.g. of the original, un-inverted problem).
  Converged pairs are not frozen explicitly: in a Krylov–Schur restart a converged pair
  is simply one of the kept Ritz vectors, so it stays converged (no explicit locking or
  purging is needed for the accuracy targeted here).

A block handles eigenvalues of multiplicity up to b in one sweep (a single-vector Krylov
space contains only one vector of each eigenspace); higher multiplicities still appear
through rounding and restarts, but more slowly.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from .._backend import get_backend, to_host
from .._blas import single_threaded_blas
from .._threads import thread_map
from ..exceptions import ConvergenceWarning

__all__ = ["KrylovSchurInfo", "block_krylov_schur"]

# Columns (vector entries) per panel of the in-place restart V_l ← Y_lᵀ V_m: small
# enough that the panel's product (l × columns) stays in cache-sized temporaries, large
# enough for efficient gemm.
_PANEL_COLUMNS = 256
_GPU_PANEL_COLUMNS = 1 << 16
# DGKS: a second Gram–Schmidt pass when a column keeps less than 1/√2 of its norm.
_DGKS = 0.7071


class KrylovSchurInfo(dict):
    """Run statistics of :func:`block_krylov_schur` (a dict with attribute access).

    Keys: ``converged`` (bool), ``n_converged``, ``residuals`` (of the returned pairs, as
    tested), ``n_restarts``, ``n_applies`` (operator applications, in columns),
    ``basis_size``.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from unmix.linalg import factorize, grid_nested_dissection
    >>> T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(16, 16))
    >>> A = (sp.kron(sp.eye(16), T) + sp.kron(T, sp.eye(16))).tocsr()   # Poisson, 16×16 grid
    >>> tree = grid_nested_dissection((16, 16), A, leaf_size=16)
    >>> from unmix.linalg import block_krylov_schur
    >>> theta, X, info = block_krylov_schur(factorize(A, tree).solve, 256, 3, return_info=True)
    >>> info.converged, info["n_converged"]
    (True, 3)
    """

    __getattr__ = dict.__getitem__


def _orthonormalize_block(V, m, W, Bk, rng, norms0, parts, backend):
    """Orthogonalise W = T V₊ against V[:m] and orthonormalise it; return (C, Q, R).

    Basis vectors are rows: V is (m_max, n) and W (b, n), C-ordered, so that every vector
    is contiguous.  ``C`` (m, b) holds the coefficients removed along V[:m] and
    ``W = Cᵀ V[:m] + Rᵀ Q`` with Q (b, n) orthonormal rows, R (b, b) upper triangular.

    ``Bk`` (b, mk) is the coupling of V₊ = V[mk:m] in the Krylov relation: in exact
    arithmetic ``V[:mk] Wᵀ = Bkᵀ`` (T symmetric), which is zero but for the last block
    or, just after a restart, the kept Ritz vectors.  That part is removed with the known
    coefficients and the part along V₊ by a local projection (the block Lanczos
    recurrence), so the full Gram–Schmidt pass against V[:m] only corrects rounding
    (coefficients ~1e-10 of ‖W‖ measured) and W keeps its norm; a second full pass runs
    only if a column lost more than 1/√2 of its norm in the first (the DGKS criterion;
    never needed on the SSS Laplacian).  Each full pass reads n·m doubles twice, so this
    halves the cost of unconditional Gram–Schmidt twice.

    The products run over the column ``parts`` of the basis concurrently (see
    :func:`_column_parts`). The basis, W and Q live on ``backend``'s device; the small
    coefficients C and R on the host.

    Columns that vanish (W rank-deficient modulo span(V): an invariant subspace was
    found) are replaced by random directions orthogonal to everything, with a zero row
    in R, so the Krylov relation still holds.
    """
    xp = backend.xp
    mk = Bk.shape[1]
    C = np.zeros((m, W.shape[0]))

    def step(coef, rows, project):
        """W −= coefᵀ V[rows]; return the squared row norms of W and V[project] Wᵀ."""
        coef_t = None if coef is None else backend.asarray(coef.T)

        def part(cols):
            Wc = W[:, cols]
            if coef_t is not None:
                Wc -= coef_t @ V[rows, cols]
            proj = None if project is None else to_host(V[project, cols] @ Wc.T)
            return to_host(xp.einsum("ij,ij->i", Wc, Wc)), proj
        norms2, projs = zip(*thread_map(part, parts))
        return sum(norms2), (None if project is None else sum(projs))

    nonzero = np.flatnonzero(np.any(Bk != 0.0, axis=0))
    j0 = nonzero[0] if nonzero.size else mk
    C[j0:mk] = Bk[:, j0:].T
    # The known coupling goes first; the block's own coefficients V₊ T V₊ are not known
    # in advance: a local pass.
    _, D = step(C[j0:mk] if j0 < mk else None, slice(j0, mk), slice(mk, m))
    C[mk:m] = D
    before, Cp = step(D, slice(mk, m), slice(0, m))
    for full_pass in range(2):
        C += Cp
        after, _ = step(Cp, slice(0, m), None)
        if full_pass == 1 or np.all(after > _DGKS**2 * before):
            break
        before, Cp = step(None, None, slice(0, m))
    Q, R = _cholesky_qr(W, norms0, backend)
    if Q is None:
        Q, R = _householder_qr(V[:m], W, rng, norms0, backend)
    return C, Q, R


def _cholesky_qr(W, norms0, backend):
    """``W = Rᵀ Q`` by Cholesky QR, twice (CholQR2); (None, None) where it is unsafe.

    Two reads of the small block W instead of Householder's column-by-column passes
    (~5× faster for 8 columns).  It needs W well conditioned (the first pass loses
    orthogonality ~ eps·cond(W)², the second restores it), and no vanishing column.
    """
    import scipy.linalg as la

    R = np.eye(W.shape[0])
    Q = W
    for _ in range(2):
        try:
            Rk = la.cholesky(to_host(Q @ Q.T), lower=False, check_finite=False)
        except la.LinAlgError:
            return None, None
        d = np.abs(np.diag(Rk))
        if d.min() <= 1e-6 * d.max():
            return None, None
        # Q ← Rk⁻ᵀ Q as a gemm with the explicit b×b inverse (LAPACK's trtrs with n
        # right-hand sides is ~5× slower); Rk is well conditioned here (checked above).
        Rinv = la.solve_triangular(Rk, np.eye(Rk.shape[0]), check_finite=False)
        Q = backend.asarray(Rinv.T) @ Q
        R = Rk @ R
    if np.any(np.abs(np.diag(R)) <= 1e-12 * norms0):
        return None, None
    return Q, R


def _householder_qr(Vm, W, rng, norms0, backend):
    """``W = Rᵀ Q`` by Householder QR, with vanishing columns replaced (see above)."""
    xp = backend.xp
    Qt, R = xp.linalg.qr(W.T, mode="reduced")
    R = np.array(to_host(R))
    b = W.shape[0]
    # A column whose remainder is at rounding level of its original norm is noise: its
    # direction is not orthogonal to V, so it must not enter the basis.
    small = np.abs(np.diag(R)) <= 1e-12 * np.maximum(norms0, np.finfo(float).tiny)
    if small.any():
        for i in np.flatnonzero(small):
            R[i, i:] = 0.0
            q = backend.asarray(rng.standard_normal(W.shape[1]))
            others = backend.asarray(np.delete(np.arange(b), i), dtype=np.int64)
            for _ in range(2):
                q -= (Vm @ q) @ Vm
                Qo = Qt[:, others]
                q -= Qo @ (Qo.T @ q)
            Qt[:, i] = q / xp.linalg.norm(q)
        # Later columns of Q were computed against the noise column; redo them.
        Qt, R2 = xp.linalg.qr(Qt, mode="reduced")
        R = to_host(R2) @ R
    return Qt.T, R


def _column_parts(n, backend):
    """Slices of the n vector entries, processed concurrently (see :mod:`unmix._threads`).

    The products with the basis are memory-bound: two threads, each over half of every
    vector, run them 1.6–1.8× faster than one on the 2-core target (240×320, m = 200).
    Small problems (a part would hold fewer than _PANEL_COLUMNS · 16 entries) use one
    part.  Two parts on any machine, so that the rounding does not depend on the number
    of cores. On the GPU one part: the device parallelises each product itself.
    """
    k = 2 if n >= 2 * 16 * _PANEL_COLUMNS and not backend.is_gpu else 1
    bounds = np.linspace(0, n // _PANEL_COLUMNS, k + 1).astype(int) * _PANEL_COLUMNS
    bounds[-1] = n
    return [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]


def _combine(V, m, Y, out, parts, backend):
    """``out = Yᵀ V[:m]`` (Ritz vectors as rows) panel by panel; out may be V[:l]."""
    Yt = backend.ascontiguous(Y.T)
    # On the GPU, panels of 64 Ki entries: a few launches per restart instead of one per
    # 256 entries, with a temporary of l × 64 Ki doubles (~100 MB at l = 200).
    panel = _GPU_PANEL_COLUMNS if backend.is_gpu else _PANEL_COLUMNS

    def part(cols):
        for c0 in range(cols.start, cols.stop, panel):
            c1 = min(c0 + panel, cols.stop)
            out[:, c0:c1] = Yt @ V[:m, c0:c1]
    thread_map(part, parts)


def block_krylov_schur(apply, n, k, *, block_size=4, ncv=None, keep=None, tol=1e-10,
                       maxiter=100, random_state=0, key=None, residual=None, warn=True,
                       return_info=False, device="cpu"):
    """Extreme eigenpairs of a symmetric operator by thick-restart block Krylov–Schur.

    Parameters
    ----------
    apply : callable
        ``apply(X)`` returns ``T @ X`` for an (n, b) array X, as an (n, b) array. T must
        be symmetric (e.g. ``factor.solve`` of a symmetric factorisation).
    n : int
        Order of T.
    k : int
        Number of wanted eigenpairs.
    block_size : int, default 4
        Columns b per operator application.
    ncv : int, optional
        Largest basis size m (the memory is n × (m + b) doubles). Default
        ``max(2k + 2b, k + 8b)``, capped at ``n − b``.
    keep : int, optional
        Ritz vectors kept at a restart (k ≤ keep ≤ ncv − b). Default
        ``k + (ncv − k) // 3`` (wanted ones plus spares: a few more than k speeds up the
        convergence of the last wanted pairs; too many leave little room to expand).
    tol : float, default 1e-10
        Convergence threshold on ``residual`` (default: the relative residual
        ``‖T x − θ x‖ / |θ|`` of the unit Ritz vector x).
    maxiter : int, default 100
        Largest number of restarts.
    random_state : int or numpy.random.Generator, default 0
        Seed of the starting block (same inputs + seed → same output).
    key : callable, optional
        ``key(theta)`` → array; the wanted Ritz values are the k with the smallest key.
        Default ``-|theta|`` (largest magnitude).
    residual : callable, optional
        ``residual(theta, Vp, S)`` → array of residual norms compared with ``tol``, for
        Ritz values ``theta`` (q,) whose Ritz vectors x_i satisfy
        ``T x_i − theta_i x_i = Vp @ S[:, i]`` (Vp: (n, b) orthonormal, S: (b, q)).
        Lets the caller test the residual of the original problem, e.g. for
        ``T = (A − σI)⁻¹``: ``‖A x − λ x‖ = ‖(A − σI) Vp s‖ / |θ|`` with λ = σ + 1/θ.
    warn : bool, default True
        Issue a :class:`~unmix.exceptions.ConvergenceWarning` when ``maxiter`` restarts
        end before all k pairs converged (the best pairs are returned anyway).
    return_info : bool, default False
        Also return a :class:`KrylovSchurInfo`.
    device : {"cpu", "gpu"}, default "cpu"
        Where the basis lives: ``"gpu"`` keeps it in CuPy arrays, hands ``apply`` and
        ``residual`` CuPy blocks (``apply`` must return one) and returns the Ritz
        vectors as a CuPy array. The small Rayleigh–Ritz problems run on the host
        either way.

    Returns
    -------
    theta : ndarray, shape (k,)
        Ritz values, sorted by ``key``.
    X : ndarray or cupy.ndarray, shape (n, k)
        Orthonormal Ritz vectors (on ``device``).
    info : KrylovSchurInfo
        Only with ``return_info=True``.

    Raises
    ------
    TypeError
        If ``apply`` is not callable or an integer argument is not an integer.
    ValueError
        If the sizes are inconsistent (k, block_size, ncv, keep versus n), tol is not
        positive, or ``apply`` returns an array of the wrong shape or non-finite values.

    Warns
    -----
    ConvergenceWarning
        If not all k pairs converged within ``maxiter`` restarts (with ``warn=True``).

    Examples
    --------
    The three smallest eigenvalues of a Poisson matrix, by shift-invert through
    its factor (the largest eigenvalues of A⁻¹):

    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from unmix.linalg import factorize, grid_nested_dissection
    >>> T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(16, 16))
    >>> A = (sp.kron(sp.eye(16), T) + sp.kron(T, sp.eye(16))).tocsr()   # Poisson, 16×16 grid
    >>> tree = grid_nested_dissection((16, 16), A, leaf_size=16)
    >>> from unmix.linalg import block_krylov_schur
    >>> theta, X = block_krylov_schur(factorize(A, tree).solve, 256, 3)
    >>> bool(np.allclose(np.sort(1 / theta), np.linalg.eigvalsh(A.toarray())[:3]))
    True
    """
    if not callable(apply):
        raise TypeError(f"apply must be callable, got {type(apply).__name__}")
    for name, val in (("n", n), ("k", k), ("block_size", block_size), ("maxiter", maxiter)):
        if isinstance(val, bool) or not isinstance(val, numbers.Integral):
            raise TypeError(f"{name} must be an integer, got {val!r}")
    n, k, b, maxiter = int(n), int(k), int(block_size), int(maxiter)
    if b < 1:
        raise ValueError(f"block_size must be >= 1, got {b}")
    if k < 1 or k + 2 * b > n:
        raise ValueError(f"k must satisfy 1 <= k <= n - 2·block_size = {n - 2 * b}, "
                         f"got k={k}")
    if maxiter < 1:
        raise ValueError(f"maxiter must be >= 1, got {maxiter}")
    if not (isinstance(tol, numbers.Real) and tol > 0):
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    if ncv is None:
        ncv = max(2 * k + 2 * b, k + 8 * b)
    ncv = min(int(ncv), n - b)
    if ncv < k + b:
        raise ValueError(f"ncv must be at least k + block_size = {k + b} (and at most "
                         f"n - block_size = {n - b}), got {ncv}")
    if keep is None:
        keep = k + (ncv - k) // 3
    keep = int(keep)
    if not k <= keep <= ncv - b:
        raise ValueError(f"keep must satisfy k <= keep <= ncv - block_size = {ncv - b}, "
                         f"got {keep}")
    if key is None:
        def key(theta):
            return -np.abs(theta)
    if residual is None:
        def residual(theta, Vp, S):
            return np.linalg.norm(S, axis=0) / np.maximum(np.abs(theta), np.finfo(float).tiny)
    rng = random_state if isinstance(random_state, np.random.Generator) \
        else np.random.default_rng(random_state)
    backend = get_backend(device)
    # BLAS on one thread throughout: the tall-skinny products are memory-bound and run
    # on our own threads over column parts (_column_parts), and on a loaded 2-core
    # machine multi-threaded OpenBLAS made the small dense eigh 30-100x slower (0.4 s
    # instead of 4 ms at m = 210).
    with single_threaded_blas():
        return _krylov_schur(apply, n, k, b, ncv, keep, tol, maxiter, rng, key, residual,
                             warn, return_info, backend)


def _krylov_schur(apply, n, k, b, ncv, keep, tol, maxiter, rng, key, residual, warn,
                  return_info, backend):
    import scipy.linalg as la

    # Basis [V_m, V₊] as the rows of one C-ordered array: every vector is contiguous, so
    # V₊ is handed to ``apply`` as an (n, b) view without a copy (a Fortran-ordered
    # block, which the multifrontal solve sweeps in place).
    xp = backend.xp
    V = xp.empty((ncv + b, n))
    parts = _column_parts(n, backend)
    H = np.zeros((ncv, ncv))
    B = np.zeros((b, ncv))
    Q, _ = la.qr(rng.standard_normal((n, b)), mode="economic")
    V[:b] = backend.asarray(Q.T)
    m = 0  # basis size; V₊ = V[m:m+b]
    n_restarts = 0
    n_applies = 0
    theta = Y = S = res = None

    def ritz(m):
        """Ritz values/vectors of H_m, sorted by key, with their residual couplings."""
        Hm = H[:m, :m]
        th, Yh = la.eigh((Hm + Hm.T) * 0.5, check_finite=False, driver="evd")
        o = np.argsort(key(th), kind="stable")
        th, Yh = th[o], Yh[:, o]
        return th, Yh, B[:, :m] @ Yh

    while True:
        # ---- expansion: W = T V₊, orthogonalised against [V_m, V₊].
        W = apply(V[m:m + b].T)
        if W.shape != (n, b):
            raise ValueError(f"apply returned an array of shape {W.shape}, expected {(n, b)}")
        W = xp.array(backend.asarray(W).T, dtype=np.float64, order="C")
        if not bool(xp.all(xp.isfinite(W))):
            raise ValueError("apply returned non-finite values (NaN or inf)")
        n_applies += b
        norms0 = to_host(xp.linalg.norm(W, axis=1))
        C, Qn, R = _orthonormalize_block(V, m + b, W, B[:, :m], rng, norms0, parts, backend)
        del W
        # Krylov relation for the grown basis: column block [m, m+b) of H is C; the rows
        # [m, m+b) left of it are the old coupling B_m (H is symmetric; both triangles
        # are kept and averaged in the eigensolve to absorb rounding).
        H[:m + b, m:m + b] = C
        H[m:m + b, :m] = B[:, :m]
        B[:, :m] = 0.0
        B[:, m:m + b] = R
        V[m + b:m + 2 * b] = Qn
        m += b

        # ---- Rayleigh–Ritz and convergence test on the k wanted pairs.
        if m >= k:
            theta, Y, S = ritz(m)
            res = np.asarray(residual(theta[:k], V[m:m + b].T, S[:, :k]), dtype=float)
            if np.all(res <= tol):
                break
        if m + b <= ncv:
            continue
        # ---- basis full: thick restart, or stop.
        if n_restarts >= maxiter:
            break
        n_restarts += 1
        # Nearly-tied Ritz values must not be split by the cut: the kept subspace would
        # then depend on rounding. Move the cut down past such ties (≥ k always).
        l = keep
        gap_tol = 1e-12 * np.abs(theta).max()
        while l > k and abs(theta[l] - theta[l - 1]) <= gap_tol:
            l -= 1
        _combine(V, m, Y[:, :l], V[:l], parts, backend)
        V[l:l + b] = V[m:m + b]
        H[:, :] = 0.0
        H[np.arange(l), np.arange(l)] = theta[:l]
        B[:, :] = 0.0
        B[:, :l] = S[:, :l]
        m = l

    converged = bool(np.all(res <= tol))
    X = xp.empty((k, n))
    _combine(V, m, Y[:, :k], X, parts, backend)
    X = X.T
    theta = theta[:k].copy()
    del V
    if not converged and warn:
        warnings.warn(
            f"block_krylov_schur: {int(np.sum(res <= tol))} of {k} eigenpairs converged "
            f"after {n_restarts} restarts (max residual {float(res.max()):.3g} > tol = "
            f"{tol:.3g}); returning the best Ritz pairs", ConvergenceWarning, stacklevel=3)
    if return_info:
        info = KrylovSchurInfo(converged=converged, n_converged=int(np.sum(res <= tol)),
                               residuals=res, n_restarts=n_restarts, n_applies=n_applies,
                               basis_size=ncv)
        return theta, X, info
    return theta, X
