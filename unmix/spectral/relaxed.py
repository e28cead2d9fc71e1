"""Relaxed sparsification: the last stage of semantic soft segmentation.

Starting from the grouped soft segments α̂ (H×W×K, K = 5), minimise (paper
Eqs. 7–11, spec ``sss.md`` §12)

.. math::

    E(α) = \\sum_i α_i^T L α_i
         + σ_S \\sum_{i,p} \\big(|α_{ip}|^{γ_p} + |1 - α_{ip}|^{γ_p}\\big)
         + σ_F \\sum_{i,p} (α_{ip} - \\hat α_{ip})^2
         + δ \\sum_p \\big(1 - \\sum_i α_{ip}\\big)^2

by iteratively reweighted least squares: each step replaces the sparsity
term by the quadratic Σ u α² + v (1 − α)² with u = max(|α′|, 0.01)^(γ_p−2),
v = max(|1 − α′|, 0.01)^(γ_p−2) at the previous iterate α′ and solves the
linear system of paper Eq. 17,

.. math:: \\big(\\mathcal L + σ_S (D_u + D_v) + σ_F I + δ C^T C\\big)\\, a = σ_S v + σ_F \\hat a + δ 1,

by preconditioned conjugate gradients. The K·N system is never assembled:
its product with the unknowns X (N×K, one column per layer) is
``L X + δ (X 1) 1ᵀ + d ⊙ X`` (one sparse product plus per-pixel terms), and
its per-pixel K×K diagonal blocks, ``diag(L_pp + d_p) + δ 1 1ᵀ``, are inverted
in closed form (Sherman–Morrison) as a block-Jacobi preconditioner.

The IRLS step is a majorise–minimise step (t ↦ max(t, 10⁻⁴)^{γ/2} is
concave in t = α²), so with exact solves it never increases
:func:`relaxed_energy`, which is E with each sparsity term weighted by 2/γ_p
and the floor applied: the energy whose stationary points the released code
reaches (spec §12.2).
"""

import numpy as np
import scipy.sparse as sparse
from numba import njit, prange

from .._checks import positive
from .._numba import threads_for
from ..filters import image_gradient
from ..image import as_float_image
from ..linalg import pcg

__all__ = ["relaxed_sparsification", "relaxed_energy", "sparsity_exponent"]


def sparsity_exponent(image):
    """Per-pixel sparsity exponent γ_p = 0.9 + min(|∇I|_p, 0.1) (paper Eq. 10b).

    Sparser (smaller γ) in flat regions, nearly quadratic across edges where
    soft transitions belong.
    """
    return 0.9 + np.minimum(image_gradient(as_float_image(image)), 0.1)


def _threshold_target(alphas):
    """The fidelity target α̂ of the released code: snap < 0.1 to 0, > 0.9 to 1, renormalise."""
    target = np.where(alphas < 0.1, 0.0, np.where(alphas > 0.9, 1.0, alphas))
    # The K inputs sum to one, so one of them is at least 1/K >= 0.1 and the sum is positive.
    return target / target.sum(axis=1, keepdims=True)


def relaxed_sparsification(alphas, L, image, iterations=20, sigma_s=1.0, sigma_f=1.0,
                           lam=100.0, rtol=1e-6, maxiter=100, final_maxiter=1000,
                           preconditioner="block-jacobi", floor=0.01, gamma=None,
                           return_info=False):
    """Relaxed sparsification of grouped soft segments (spec ``sss.md`` §12).

    Parameters
    ----------
    alphas : array_like, shape (H, W, K)
        Grouped soft segments that sum to one (the output of
        :func:`~unmix.spectral.group_segments`).
    L : sparse matrix, shape (N, N)
        The SSS Laplacian (:func:`~unmix.graph.sss_laplacian`), N = H·W.
    image : array_like, shape (H, W, 3)
        The image, for the per-pixel sparsity exponent γ_p.
    iterations : int, optional
        Number of IRLS steps (20).
    sigma_s, sigma_f : float, optional
        σ_S and σ_F, the weights of the sparsity and fidelity terms (1, 1).
    lam : float, optional
        δ, the paper's λ: weight of the soft sum-to-one term (100).
    rtol, maxiter : optional
        Relative-residual tolerance and iteration cap of each inner PCG
        solve (1e-6, 100, as the released code); a solve that stops early
        returns its iterate of smallest residual, as MATLAB's ``pcg`` does.
    final_maxiter : int, optional
        Iteration cap of the final solve without the sparsity term (1000).
    preconditioner : {"block-jacobi", None}, optional
        The per-pixel K×K block-Jacobi preconditioner (default), or none,
        which is what the released code does. With none, the 100-iteration
        truncation of every solve is part of the result; the preconditioned
        solves converge, so their result is closer to the IRLS iterates'
        fixed point and differs from the released code's by the truncation.
    floor : float, optional
        The IRLS weights use max(|α|, floor); 0.01 in the released code.
    gamma : array_like, shape (H, W), optional
        Per-pixel exponents γ_p; computed from ``image`` by
        :func:`sparsity_exponent` by default.
    return_info : bool, optional
        Also return a dict with the energy after each step, the inner
        iterations and residuals.

    Returns
    -------
    alphas : ndarray, shape (H, W, K)
        Not clamped: values lie in about [-0.1, 1.1] and sum to one up to
        about 1e-5, as in the released code.
    info : dict
        Only if ``return_info``.
    """
    alphas = np.asarray(alphas, dtype=np.float64)
    if alphas.ndim != 3 or alphas.shape[2] < 2:
        raise ValueError(f"alphas must have shape (H, W, K) with K >= 2, got shape {alphas.shape}")
    if not np.isfinite(alphas).all():
        raise ValueError("alphas contain NaN or infinite values")
    height, width, K = alphas.shape
    N = height * width
    if not sparse.issparse(L) or L.shape != (N, N):
        raise ValueError(
            f"L must be a sparse ({N}, {N}) matrix for alphas of shape {alphas.shape}, "
            f"got {type(L).__name__} of shape {getattr(L, 'shape', None)}"
        )
    L = sparse.csr_matrix(L, dtype=np.float64)
    if gamma is None:
        image = as_float_image(image)
        if image.shape[:2] != (height, width):
            raise ValueError(f"image has shape {image.shape[:2]}, alphas have {(height, width)}")
        gamma = sparsity_exponent(image)
    gamma = np.asarray(gamma, dtype=np.float64)
    if gamma.shape != (height, width) or not np.isfinite(gamma).all():
        raise ValueError(f"gamma must be a finite ({height}, {width}) array, got shape {gamma.shape}")
    sigma_s, sigma_f = positive("sigma_s", sigma_s), positive("sigma_f", sigma_f)
    lam, floor = positive("lam", lam), positive("floor", floor)
    if preconditioner not in ("block-jacobi", None):
        raise ValueError(f"preconditioner must be 'block-jacobi' or None, got {preconditioner!r}")
    if not (int(iterations) == iterations and iterations >= 0):
        raise ValueError(f"iterations must be a non-negative integer, got {iterations!r}")

    operator = _RelaxedOperator(L, K, lam)
    target = _threshold_target(alphas.reshape(N, K))
    gamma = np.ascontiguousarray(gamma.reshape(N))
    x = target.copy()
    info = {"energy": [], "pcg_iterations": [], "pcg_residuals": []}

    def record_energy():
        if return_info:  # an extra sparse product and two powers per entry: only on request
            info["energy"].append(relaxed_energy(x, L, gamma, target, sigma_s, sigma_f, lam, floor))

    record_energy()
    d, rhs = np.empty((N, K)), np.empty((N, K))
    for _ in range(int(iterations)):
        with threads_for(N):
            _irls_system(x, gamma, target, floor, sigma_s, sigma_f, lam, d, rhs)
        operator.set_diagonal(d)
        x = _solve(operator, rhs, x, rtol, maxiter, preconditioner, info)
        record_energy()
    # Final solve without the sparsity term, the current x as fidelity target
    # (released code only): (blkdiag(L) + δ CᵀC + I) a = x + δ 1.
    operator.set_diagonal(np.ones((N, K)))
    x = _solve(operator, x + lam, x, rtol, final_maxiter, preconditioner, info)
    out = x.reshape(height, width, K)
    return (out, info) if return_info else out


def _solve(operator, rhs, x0, rtol, maxiter, preconditioner, info):
    shape = x0.shape
    result = pcg(operator.matvec, rhs.ravel(), x0.ravel(), rtol=rtol, maxiter=maxiter,
                 M=operator.block_jacobi if preconditioner else None, warn=False)
    info["pcg_iterations"].append(result.iterations)
    info["pcg_residuals"].append(result.residual)
    return result.x.reshape(shape)


class _RelaxedOperator:
    """The K·N system of Eq. 17 as an operator on pixel-major flattened X (N×K)."""

    def __init__(self, L, K, lam):
        self.L, self.K, self.lam = L, K, float(lam)
        self.L_diagonal = L.diagonal()

    def set_diagonal(self, d):
        self.d = np.ascontiguousarray(d)
        # Block-Jacobi: B_p = diag(D_p) + δ 1 1ᵀ with D_p = L_pp + d_p;
        # Sherman–Morrison gives B_p⁻¹ r = r/D − (δ Σ(r/D)) / (1 + δ Σ 1/D) / D.
        self.inverse_D = 1.0 / (self.L_diagonal[:, None] + self.d)
        self.coupling = self.lam / (1.0 + self.lam * self.inverse_D.sum(axis=1))

    def matvec(self, x):
        out = np.empty_like(x)
        with threads_for(self.L.shape[0]):
            _apply_relaxed(self.L.indptr, self.L.indices, self.L.data, x.reshape(-1, self.K),
                           self.d, self.lam, out.reshape(-1, self.K))
        return out

    def block_jacobi(self, r):
        out = np.empty_like(r)
        with threads_for(self.L.shape[0]):
            _block_jacobi(r.reshape(-1, self.K), self.inverse_D, self.coupling,
                          out.reshape(-1, self.K))
        return out


@njit(cache=True, parallel=True)
def _apply_relaxed(indptr, indices, data, X, d, lam, out):
    """out = L X + δ (X 1) 1ᵀ + d ⊙ X, one pixel row per task."""
    K = X.shape[1]
    for p in prange(X.shape[0]):
        # Accumulate in the output row itself: a per-row scratch array would
        # be a heap allocation per pixel.
        total = 0.0
        for k in range(K):
            total += X[p, k]
        for k in range(K):
            out[p, k] = lam * total + d[p, k] * X[p, k]
        for j in range(indptr[p], indptr[p + 1]):
            q = indices[j]
            w = data[j]
            for k in range(K):
                out[p, k] += w * X[q, k]


@njit(cache=True, parallel=True)
def _irls_system(x, gamma, target, floor, sigma_s, sigma_f, lam, d, rhs):
    """Diagonal d and right-hand side of Eq. 17 at the iterate x (spec §12.3 step 3).

    u = max(|x|, floor)^(γ−2), v = max(|1 − x|, floor)^(γ−2);
    d = σ_S (u + v) + σ_F and rhs = σ_S v + σ_F α̂ + δ.
    """
    K = x.shape[1]
    for p in prange(x.shape[0]):
        power = gamma[p] - 2.0
        for k in range(K):
            u = max(abs(x[p, k]), floor) ** power
            v = max(abs(1.0 - x[p, k]), floor) ** power
            d[p, k] = sigma_s * (u + v) + sigma_f
            rhs[p, k] = sigma_s * v + sigma_f * target[p, k] + lam


@njit(cache=True, parallel=True)
def _block_jacobi(R, inverse_D, coupling, out):
    """out_p = (diag(D_p) + δ 1 1ᵀ)⁻¹ r_p for every pixel p (Sherman–Morrison)."""
    K = R.shape[1]
    for p in prange(R.shape[0]):
        s = 0.0
        for k in range(K):
            s += R[p, k] * inverse_D[p, k]
        c = coupling[p] * s
        for k in range(K):
            out[p, k] = (R[p, k] - c) * inverse_D[p, k]


def relaxed_energy(alphas, L, gamma, target, sigma_s=1.0, sigma_f=1.0, lam=100.0, floor=0.01):
    """The energy that the relaxed IRLS decreases (spec ``sss.md`` §12.2).

    E with each sparsity term replaced by (2/γ) ψ(α²), where ψ(t) = t^{γ/2}
    for t ≥ floor² and continues linearly below (the floor of the weights).
    Without the floor and the 2/γ factor this is the paper's Eq. 11.

    Parameters
    ----------
    alphas : ndarray, shape (N, K) or (H, W, K)
    L : sparse matrix, shape (N, N)
    gamma : ndarray, shape (N,), (H, W) or like alphas
        Per-pixel (or per pixel and layer) exponents.
    target : ndarray, like alphas
        The fidelity target α̂.
    sigma_s, sigma_f, lam, floor : float

    Returns
    -------
    energy : float
    """
    K = alphas.shape[-1]
    X = alphas.reshape(-1, K)
    target = target.reshape(-1, K)
    gamma = np.asarray(gamma, dtype=np.float64)
    gamma = gamma.reshape(-1, 1) if gamma.size == X.shape[0] else gamma.reshape(X.shape)
    smoothness = float(np.sum(X * (L @ X)))

    def penalty(t):
        # ψ(t²) (2/γ): t^γ (2/γ) above the floor, tangent-line continuation below it.
        t2, f2 = t * t, floor * floor
        above = t2 ** (gamma / 2)
        below = f2 ** (gamma / 2) + (gamma / 2) * f2 ** (gamma / 2 - 1) * (t2 - f2)
        return (2.0 / gamma) * np.where(t2 >= f2, above, below)

    sparsity = float(np.sum(penalty(X) + penalty(1.0 - X)))
    fidelity = float(np.sum((X - target) ** 2))
    constraint = float(np.sum((1.0 - X.sum(axis=1)) ** 2))
    return smoothness + sigma_s * sparsity + sigma_f * fidelity + lam * constraint
