"""Constrained sparsification: the spectral-matting IRLS in eigen-space.

Spec ``sss.md`` §10 (released code ``softSegmentsFromEigs.m``, adapted from Levin et
al. 2008, *Spectral Matting*), §13 (constants), §14 items 6–7 (pruning schedule, the
dependent last component) and §19 (tests).

The problem
-----------
Each soft segment is a combination of the K eigenvectors, α_k = E y_k, and the C
segments sum to one, so the last one is dependent: α_C = 1 − Σ_{k<C} α_k.  Each IRLS
iteration minimises the quadratic surrogate (§10.1)

.. math::

    Q(y) = \\sum_k y_k^T Λ y_k + \\sum_{p,k} e0_{pk} α_{pk}^2 + e1_{pk} (1 - α_{pk})^2,

    e0 = c \\max(|α|, 10^{-10})^{γ-2},\\quad e1 = c \\max(|α - 1|, 10^{-10})^{γ-2},
    \\quad c = 0.3^γ,

with the weights taken at the previous iterate.  Its normal equations are the block
system (§10.3)

.. math::

    [\\operatorname{blkdiag}(A_1 … A_{C-1}) + (1 1^T) ⊗ A_C]\\, y = [b_k + b_C]_k,

    A_k = E^T \\operatorname{diag}(e0_k + e1_k) E + Λ,\\quad b_k = E^T e1_k,\\quad
    b_C = E^T e0_C + E^T (L 1).

Its fixed points are stationary points of (§10.1, [derived])

.. math::

    E_c(α) = \\sum_k α_k^T L α_k + \\frac{2c}{γ} \\sum_{p,k} |α_{pk}|^γ + |1 - α_{pk}|^γ,

and, because ``c|α₀|^{γ-2} α²`` majorises ``(2c/γ)|α|^γ`` up to a constant, E_c does
not increase from one iteration to the next while the set of components is unchanged
(a majorise–minimise argument; the 10⁻¹⁰ floor and pruning are the only exceptions).

How it is computed
------------------
*Weighted Gram products* ``E^T diag(w_k) E`` for every layer cost N·K² flops each and
dominate the stage (§10.5).  We form them as symmetric rank-n updates ``Xᵀ X`` of
``X = sqrt(w_k) ⊙ E`` (NumPy dispatches ``X.T @ X`` to BLAS ``syrk``: half the flops
of a GEMM), over blocks of a few thousand pixels so that the E block stays in cache
while every layer uses it, in one Python thread per core over disjoint pixel ranges
(BLAS itself on one thread: OpenBLAS parallelises a 100×100 ``syrk`` with a huge inner
dimension badly, measured 3–8× slower than one thread on the 2-core target machine).

*The block system* is solved with its Schur complement instead of a dense
((C−1)K)² factorisation (§10.5): with M = Σ_k A_k⁻¹, g = Σ_k A_k⁻¹ r_k and
u = A_C s, s = Σ_k y_k,

.. math:: (A_C^{-1} + M)\\, u = g,\\qquad y_k = A_k^{-1} (r_k - u),

which is symmetric positive definite (a sum of SPD matrices).  In the late iterations
the weights span 1 … 10¹² and this solve alone loses digits, so it is followed by
iterative refinement with residuals computed against the *full* block system (§10.5),
stopped as LAPACK's ``xGERFS`` does: when the componentwise backward error reaches
machine precision, stops halving, or after ``max_refine`` steps.  Measured on the
iteration-40 system at 240×320 (cond ≈ 2e12): the plain Schur solve has a backward
error of 4e-7 and moves α by 7e-5 from a dense LU solve; two refinement steps bring
the backward error to 3e-16 and α to within 4e-6 of the dense solve, which is the
distance between two dense LAPACK solvers (``gesv`` and ``sysv``, 3e-6) on that system.

*On the GPU* (``device="gpu"``, or CuPy eigenvectors) the same loop runs with the
per-pixel passes written once against the array module (``_ArrayPixelWork``): α, the
weights and E stay on the device, the Gram products are batched over layers, and only
G (C×K×K), B and the per-layer sums come back to the host (a few MB per iteration),
where the block solve above runs as on the CPU.

*Precision.* Everything is float64.  Single-precision Gram products were measured and
rejected: 2× faster, and α moves by 2e-6 in the first iteration but by up to 67 in a
late one (the weights span twelve orders of magnitude).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from typing import NamedTuple

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import scipy.sparse as sp
from numba import njit

from .._backend import get_backend, like_input, to_host
from .._blas import single_threaded_blas
from .._checks import as_array, grid_shape, integer, real
from .._threads import default_threads, thread_map
from ..exceptions import ConvergenceWarning
from ._kmeans import nearest_centre, seeded_kmeans

__all__ = ["constrained_sparsification", "kmeans_init", "prune_schedule"]

log = logging.getLogger("unmix")

#: IRLS weight floor: |α| below it is treated as it (§10.1; keeps the weights ≤ ~4e11).
_FLOOR = 1e-10
#: The sparsity weight's base: c = 0.3^γ (released code, §10.1).
_WEIGHT_BASE = 0.3
#: Backward error above which the refined block solve is reported as inaccurate.
_BERR_WARN = 1e-8
#: Pixels per chunk of the batched Gram products on the GPU: C products over 32 768
#: pixels each keep the device busier than a few over all N (``_ArrayPixelWork``).
_GRAM_ROWS = 1 << 15
#: Most bytes of the scaled copies sqrt(w_k) ⊙ E that one batched Gram product reads.
_GRAM_BYTES = 1 << 30


# --------------------------------------------------------------------------- kernels
class Weights(NamedTuple):
    """IRLS weights of an iterate (§10.1), pixel-major arrays of shape (N, C) where E is."""

    sw: np.ndarray  #: sqrt(e0 + e1)
    e0: np.ndarray  #: c·max(|α|, floor)^(γ−2)
    e1: np.ndarray  #: c·max(|α − 1|, floor)^(γ−2)
    constant: np.ndarray  #: (C,) on the host: e0 + e1 where it is one value at all pixels, else NaN


@njit(cache=True, nogil=True)
def _weights_kernel(alpha, gamma, c, floor, sw, e0, e1, energy, max_abs, w_min, w_max):
    """IRLS weights of every (pixel, layer) of a block, with sparsity energy and max |α|.

    Writes ``sw = sqrt(e0 + e1)`` (the Gram products use ``sqrt(w) ⊙ E``), ``e0`` and
    ``e1`` (§10.1), adds to ``energy[k]`` the block's ``Σ_p |α|^γ + |1 − α|^γ``, raises
    ``max_abs[k]`` to its ``max_p |α_pk|`` (the pruning test, §10.3) and widens
    ``[w_min[k], w_max[k]]`` to the range of ``e0 + e1`` (a layer of constant weight
    has a Gram product w·EᵀE = w·I, see ``_PixelWork.grams``).  One power per term
    serves both weight and energy: ``|α|^γ = |α|^{γ−2} α²``, with |α| floored at
    ``floor`` like the weights (below it the term is < floor^γ = 1e-8).  The sums go
    to local accumulators, which LLVM keeps apart from the output stores (2× faster
    than accumulating into the arguments).  Serial and ``nogil``: the caller runs one
    block per thread.
    """
    n, C = alpha.shape
    g2 = gamma - 2.0
    en = np.zeros(C)
    mx = np.zeros(C)
    lo = np.full(C, np.inf)
    hi = np.full(C, -np.inf)
    for p in range(n):
        for k in range(C):
            a = alpha[p, k]
            a0 = abs(a)
            q0 = max(a0, floor)
            q1 = max(abs(a - 1.0), floor)
            # exp(g·log q) instead of q**g: one libm call each way, 25 % faster than
            # pow here and equal to it within a few ulps.
            p0 = math.exp(g2 * math.log(q0))
            p1 = math.exp(g2 * math.log(q1))
            w0 = c * p0
            w1 = c * p1
            w = w0 + w1
            e0[p, k] = w0
            e1[p, k] = w1
            sw[p, k] = math.sqrt(w)
            en[k] += p0 * q0 * q0 + p1 * q1 * q1
            mx[k] = max(mx[k], a0)
            lo[k] = min(lo[k], w)
            hi[k] = max(hi[k], w)
    for k in range(C):
        energy[k] += en[k]
        max_abs[k] = max(max_abs[k], mx[k])
        w_min[k] = min(w_min[k], lo[k])
        w_max[k] = max(w_max[k], hi[k])


@njit(cache=True, nogil=True)
def _scale_rows(E, sw, k, out):
    """``out = sw[:, k, None] * E``: the rows of an E block scaled by layer k's sqrt(w).

    Twice as fast as the broadcast ``np.multiply`` on these (1000 × 100) blocks, which
    took a sixth of the Gram products' time.
    """
    n, K = E.shape
    for p in range(n):
        s = sw[p, k]
        for j in range(K):
            out[p, j] = E[p, j] * s


def _compact_columns(array, keep):
    """``array[:, keep]`` for increasing ``keep``, written over ``array``'s own buffer.

    Returns a C-contiguous (N, len(keep)) view of the buffer's start. Copying rows
    front to back is safe in place: each entry moves to an index no larger than its
    own. It saves a fresh N×C array per pruned array, whose first touch of new memory
    costs more than the copy.
    """
    n = array.shape[0]
    flat = array.reshape(-1)
    _compact_rows(flat, array.shape[1], np.asarray(keep, dtype=np.int64))
    return flat[: n * len(keep)].reshape(n, len(keep))


@njit(cache=True)
def _compact_rows(flat, width, keep):
    m = keep.shape[0]
    for p in range(flat.shape[0] // width):
        for j in range(m):
            flat[p * m + j] = flat[p * width + keep[j]]


def _constant_weight(w_min, w_max):
    """``Weights.constant`` from each layer's range of e0 + e1: w where it is [w, w], else NaN."""
    return np.where(w_min == w_max, w_min, np.nan)


class _PixelWork:
    """The per-pixel passes of an iteration: α = E y, the IRLS weights, the Gram products.

    Two implementations share this interface and the one loop of
    :func:`constrained_sparsification`: :class:`_ThreadedPixelWork` (Numba kernels in
    threads, on the CPU) and :class:`_ArrayPixelWork` (whole-array operations of an
    array module, on the GPU).  α and the weights stay where E is; what the host's
    block solve and pruning need comes back as small NumPy arrays.

    ``update(Y, alpha, gamma)``
        Fills ``alpha`` (N, C) in place from ``Y`` (K, C−1) (unless None) and returns
        ``(Weights, energy, max_abs)``: the weights, ``Σ_p |α|^γ + |1 − α|^γ`` and
        ``max_p |α_pk|`` per layer (host arrays of shape (C,)).
    ``select(alpha, weights, keep)``
        α and the weights of the layers ``keep`` only (pruning, §10.3).
    ``grams(weights)``
        The Gram products and right-hand sides (below).
    """

    def __init__(self, E):
        self.E = E
        self._gram_E = None

    def grams(self, weights):
        """Host arrays G[k] = Eᵀ diag(sw_k²) E (C, K, K) and B = Eᵀ [e1_1..e1_{C−1}, e0_C] (K, C).

        A layer whose weight w is the same at every pixel has G[k] = w·EᵀE, from one
        Gram product of E shared by all such layers.  That is every layer of the first
        iteration from hard labels: α ∈ {0, 1} gives e0 + e1 = c (1 + floor^{γ−2}) at
        every pixel (§10.3, "first-iteration weights"), so it costs one product instead
        of C.
        """
        constant = ~np.isnan(weights.constant)
        G, B = self._weighted_grams(weights, np.flatnonzero(~constant))
        for k in np.flatnonzero(constant):
            if self._gram_E is None:
                self._gram_E = to_host(self.E.T @ self.E)
            G[k] = weights.constant[k] * self._gram_E
        return G, B


class _ThreadedPixelWork(_PixelWork):
    """The per-pixel passes in Numba kernels, split over threads by pixel range (CPU).

    Every pass reads a few-thousand-pixel block of E while it is in cache and does all
    layers' work on it; each thread owns a contiguous pixel range and its own
    accumulators, which are summed at the end (no locks).  BLAS runs on one thread
    inside (``single_threaded_blas`` by the caller): the products here are K×K or thin,
    which OpenBLAS parallelises badly (a 100×100 ``syrk`` over 76 800 rows was 3–8×
    slower on two threads than on one, measured on the 2-core target).
    """

    def __init__(self, E, n_threads, block=None):
        super().__init__(E)
        N, K = E.shape
        if block is None:
            # ~1 MB blocks of sqrt(w)·E: the E block stays in L2 while all layers use it,
            # and the per-call overhead (3 NumPy calls per block and layer) stays < 5 %.
            block = int(min(8192, max(256, (1 << 17) // K)))
        self.block = block
        n_threads = max(1, min(n_threads, -(-N // block)))
        self.bounds = np.linspace(0, N, n_threads + 1).astype(np.int64)
        self._weights = None

    def _map(self, fn, *args):
        return thread_map(lambda lo, hi: fn(lo, hi, *args), self.bounds[:-1], self.bounds[1:])

    # pass 1: α = E y (+ the dependent layer), weights, energy, max |α|
    def _update_range(self, lo, hi, Y, alpha, sw, e0, e1, gamma, c):
        C = alpha.shape[1]
        m = C - 1
        energy = np.zeros(C)
        max_abs = np.zeros(C)
        w_min = np.full(C, np.inf)
        w_max = np.full(C, -np.inf)
        for s in range(lo, hi, self.block):
            e = min(s + self.block, hi)
            a = alpha[s:e]
            if Y is not None:
                # α_k = E y_k (k < C), α_C = 1 − Σ_{k<C} α_k: exact sum-to-one (§10.3).
                np.matmul(self.E[s:e], Y, out=a[:, :m])
                a[:, m] = 1.0
                a[:, m] -= a[:, :m].sum(axis=1)
            _weights_kernel(a, gamma, c, _FLOOR, sw[s:e], e0[s:e], e1[s:e], energy, max_abs,
                            w_min, w_max)
        return energy, max_abs, w_min, w_max

    def update(self, Y, alpha, gamma):
        """Fill ``alpha`` from ``Y`` (unless None); the weights, sparsity sums and max |α|.

        The weight arrays are reused from call to call while C is unchanged (fresh ones
        would page-fault on every iteration).
        """
        c = _WEIGHT_BASE**gamma
        if self._weights is None or self._weights[0].shape != alpha.shape:
            self._weights = tuple(np.empty_like(alpha) for _ in range(3))
        sw, e0, e1 = self._weights
        parts = self._map(self._update_range, Y, alpha, sw, e0, e1, gamma, c)
        energy = np.sum([p[0] for p in parts], axis=0)
        max_abs = np.max([p[1] for p in parts], axis=0)
        w_min = np.min([p[2] for p in parts], axis=0)
        w_max = np.max([p[3] for p in parts], axis=0)
        return Weights(sw, e0, e1, _constant_weight(w_min, w_max)), energy, max_abs

    def select(self, alpha, weights, keep):
        """α and the weights of the layers ``keep`` only, each compacted in its own buffer."""
        self._weights = tuple(_compact_columns(w, keep) for w in weights[:3])
        return _compact_columns(alpha, keep), Weights(*self._weights, weights.constant[keep])

    # pass 2: the weighted Gram products and the right-hand sides
    def _gram_range(self, lo, hi, sw, e0, e1, varying):
        E = self.E
        N, K = E.shape
        C = sw.shape[1]
        m = C - 1
        G = np.zeros((C, K, K))
        B = np.zeros((K, C))
        X = np.empty((self.block, K))
        for s in range(lo, hi, self.block):
            e = min(s + self.block, hi)
            Eb = E[s:e]
            Swb = sw[s:e]
            Xb = X[: e - s]
            for k in varying:
                _scale_rows(Eb, Swb, k, Xb)
                # X.T @ X on one buffer is dispatched to BLAS syrk (half a GEMM).
                G[k] += Xb.T @ Xb
            # b_k = Eᵀ e1_k (k < C), and Eᵀ e0_C for the dependent one (§10.3).
            R = e1[s:e].copy()
            R[:, m] = e0[s:e, m]
            B += E[s:e].T @ R
        return G, B

    def _weighted_grams(self, weights, varying):
        """G (zero for the layers not in ``varying``) and B, summed range by range."""
        parts = self._map(self._gram_range, weights.sw, weights.e0, weights.e1, varying)
        G = parts[0][0]
        B = parts[0][1]
        for g, b in parts[1:]:
            G += g
            B += b
        return G, B


class _ArrayPixelWork(_PixelWork):
    """The per-pixel passes as whole-array operations of an array module (GPU).

    Written once against NumPy's API, which CuPy implements, so that ``xp=numpy`` runs
    the same code on the CPU (the tests compare it with :class:`_ThreadedPixelWork`).
    The formulas are those of ``_weights_kernel``.  The weighted Gram products are
    batched matrix products ``Xᵀ X`` of ``X = sqrt(w_k) ⊙ E`` for a group of layers at
    a time over a chunk of pixels: every layer's product is independent work for the
    device, and X stays below ``_GRAM_BYTES``.  Everything is float64 (the module
    docstring says why).
    """

    def __init__(self, E, xp):
        super().__init__(E)
        self.xp = xp

    def update(self, Y, alpha, gamma):
        """Fill ``alpha`` from ``Y`` (unless None); the weights, sparsity sums and max |α|."""
        xp = self.xp
        m = alpha.shape[1] - 1
        if Y is not None:
            # α_k = E y_k (k < C), α_C = 1 − Σ_{k<C} α_k: exact sum-to-one (§10.3).
            alpha[:, :m] = self.E @ xp.asarray(Y)
            alpha[:, m] = 1.0 - alpha[:, :m].sum(axis=1)
        c = _WEIGHT_BASE**gamma
        abs_alpha = xp.abs(alpha)
        q0 = xp.maximum(abs_alpha, _FLOOR)
        q1 = xp.maximum(xp.abs(alpha - 1.0), _FLOOR)
        p0 = q0 ** (gamma - 2.0)
        p1 = q1 ** (gamma - 2.0)
        e0 = c * p0
        e1 = c * p1
        w = e0 + e1
        # |α|^γ = |α|^{γ−2} α² with |α| floored, as the kernel computes it; one transfer.
        sums = xp.stack([(p0 * q0 * q0 + p1 * q1 * q1).sum(axis=0), abs_alpha.max(axis=0),
                         w.min(axis=0), w.max(axis=0)])
        energy, max_abs, w_min, w_max = to_host(sums)
        return Weights(xp.sqrt(w), e0, e1, _constant_weight(w_min, w_max)), energy, max_abs

    def select(self, alpha, weights, keep):
        """α and the weights of the layers ``keep`` only."""
        columns = self.xp.asarray(keep)
        return alpha[:, columns], Weights(*(w[:, columns] for w in weights[:3]),
                                          weights.constant[keep])

    def _weighted_grams(self, weights, varying):
        """G (zero for the layers not in ``varying``) and B, computed on the device."""
        xp = self.xp
        E = self.E
        N, K = E.shape
        m = weights.sw.shape[1] - 1
        G = np.zeros((weights.sw.shape[1], K, K))
        if varying.size:
            sw_varying = weights.sw.T[xp.asarray(varying)]  # layer-major (len(varying), N)
            rows = min(N, _GRAM_ROWS)
            group = max(1, _GRAM_BYTES // (rows * K * E.itemsize))
            G_varying = xp.zeros((varying.size, K, K))
            for s in range(0, N, rows):
                Eb = E[s:s + rows]
                for j in range(0, varying.size, group):
                    X = sw_varying[j:j + group, s:s + rows, None] * Eb[None]
                    G_varying[j:j + group] += xp.matmul(X.transpose(0, 2, 1), X)
            G[varying] = to_host(G_varying)
        # b_k = Eᵀ e1_k (k < C), and Eᵀ e0_C for the dependent one (§10.3).
        B = E.T @ weights.e1
        B[:, m] = E.T @ weights.e0[:, m]
        return G, to_host(B)


def _pixel_work(E, backend, n_threads):
    """The pixel passes for ``backend``: Numba kernels in threads, or array code on the GPU."""
    if backend.is_gpu:
        return _ArrayPixelWork(E, backend.xp)
    return _ThreadedPixelWork(E, n_threads)


# --------------------------------------------------------------------------- block solve
def _block_matvec(A, y):
    """``[blkdiag(A_0..A_{m-1}) + (1 1ᵀ) ⊗ A_m] y`` for y of shape (m, K)."""
    m = y.shape[0]
    return np.einsum("kij,kj->ki", A[:m], y) + A[m] @ y.sum(axis=0)


def _spd_inverse(A):
    """Inverse of a symmetric positive definite K×K matrix (LU fallback if not SPD).

    LAPACK ``potrf`` + ``potri`` (the inverse from the Cholesky factor, half the flops
    of solving for the identity) fills the lower triangle, which is mirrored.
    """
    factor, info = scipy.linalg.lapack.dpotrf(A, lower=1, clean=0)
    if info == 0:
        inv, info = scipy.linalg.lapack.dpotri(factor, lower=1)
    if info != 0:
        inv = scipy.linalg.lu_solve(scipy.linalg.lu_factor(A), np.eye(A.shape[0]))
        return 0.5 * (inv + inv.T)
    lower = np.tril(inv)
    return lower + np.tril(lower, -1).T


def _solve_block_system(A, r, max_refine=10):
    """Solve ``[blkdiag(A_0..A_{m-1}) + (1 1ᵀ) ⊗ A_m] y = r`` by Schur complement.

    Parameters
    ----------
    A : ndarray, shape (m + 1, K, K)
        The blocks; ``A[m]`` is the dependent component's block A_C.
    r : ndarray, shape (m, K)
        Right-hand sides ``b_k + b_C``.
    max_refine : int
        Most iterative-refinement steps.

    Returns
    -------
    y : ndarray, shape (m, K)
    steps : int
        Refinement steps taken.
    berr : float
        Componentwise backward error of ``y`` against the full block system.
    """
    m, K = r.shape
    Ainv = np.empty((m, K, K))
    for k in range(m):
        Ainv[k] = _spd_inverse(A[k])
    # Schur complement in u = A_C s (module docstring): SPD, so Cholesky applies.
    S = _spd_inverse(A[m]) + Ainv.sum(axis=0)
    try:
        S_fac = ("cho", scipy.linalg.cho_factor(S, lower=True))
    except np.linalg.LinAlgError:
        S_fac = ("lu", scipy.linalg.lu_factor(S))

    def schur_solve(rhs):
        z = np.einsum("kij,kj->ki", Ainv, rhs)  # A_k⁻¹ r_k
        g = z.sum(axis=0)
        u = scipy.linalg.cho_solve(S_fac[1], g) if S_fac[0] == "cho" else scipy.linalg.lu_solve(S_fac[1], g)
        return z - Ainv @ u  # y_k = A_k⁻¹ (r_k − u)

    absA = np.abs(A)

    def backward_error(y, res):
        # |𝒜||y| + |r| per block: |A_k||y_k| + |A_C| Σ_j |y_j|  (LAPACK's componentwise berr).
        ay = np.abs(y)
        denom = np.einsum("kij,kj->ki", absA[:m], ay) + absA[m] @ ay.sum(axis=0) + np.abs(r)
        tiny = np.finfo(float).tiny
        return float(np.max(np.abs(res) / np.maximum(denom, tiny))) if res.size else 0.0

    y = schur_solve(r)
    res = r - _block_matvec(A, y)
    berr = backward_error(y, res)
    steps = 0
    eps = np.finfo(float).eps
    while steps < max_refine and berr > eps:
        y_new = y + schur_solve(res)
        res_new = r - _block_matvec(A, y_new)
        berr_new = backward_error(y_new, res_new)
        if berr_new >= berr:  # no progress: keep the better iterate
            break
        steps += 1
        y, res, prev, berr = y_new, res_new, berr, berr_new
        if berr > 0.5 * prev:  # stopped halving (xGERFS)
            break
    return y, steps, berr


# --------------------------------------------------------------------------- validation
def _validate_eigs(eigvecs, eigvals, shape, backend):
    """E as C-contiguous float64 on ``backend``'s device, Λ as float64 on the host, (H, W)."""
    # Shape and dtype are checked where the caller's array is, finiteness where E runs:
    # a CuPy E is never copied to the host only to be checked.
    E = get_backend(None, eigvecs).asarray(eigvecs, dtype=None)
    if E.ndim != 2:
        raise ValueError(f"eigvecs must have shape (N, K), got an array of shape {E.shape}")
    if not (np.issubdtype(E.dtype, np.floating) or np.issubdtype(E.dtype, np.integer)):
        raise TypeError(f"eigvecs must be real, got dtype {E.dtype}")
    lam = np.asarray(to_host(eigvals))
    N, K = E.shape
    if lam.shape != (K,):
        raise ValueError(
            f"eigvals must have shape (K,) = ({K},) to match eigvecs {E.shape}, got shape {lam.shape}"
        )
    if not (np.issubdtype(lam.dtype, np.floating) or np.issubdtype(lam.dtype, np.integer)):
        raise TypeError(f"eigvals must be real, got dtype {lam.dtype}")
    if K < 1 or K > N:
        raise ValueError(f"eigvecs must have 1 <= K <= N columns, got shape {E.shape}")
    H, W = grid_shape(shape, N)
    E = backend.ascontiguous(E)
    lam = np.asarray(lam, dtype=np.float64)
    if not bool(backend.xp.isfinite(E).all()):
        raise ValueError("eigvecs has non-finite entries (NaN or inf); expected finite values")
    if not np.isfinite(lam).all():
        raise ValueError("eigvals has non-finite entries (NaN or inf); expected finite values")
    return E, lam, (H, W)


def _initial_alpha(init, shape, n_components):
    H, W = shape
    N = H * W
    a = np.asarray(init)
    if a.ndim == 3:
        if a.shape[:2] != (H, W):
            raise ValueError(
                f"init as soft segments must have shape (H, W, C) = ({H}, {W}, C), got {a.shape}"
            )
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise TypeError(f"init soft segments must be real, got dtype {a.dtype}")
        if a.shape[2] < 2:
            raise ValueError(f"init must hold at least 2 soft segments, got {a.shape[2]}")
        alpha = np.array(a.reshape(N, a.shape[2]), dtype=np.float64, order="C")
        if not np.isfinite(alpha).all():
            raise ValueError("init soft segments have non-finite values (NaN or inf)")
        return alpha
    if a.shape not in ((N,), (H, W)):
        raise ValueError(
            f"init must be hard labels of shape ({N},) or ({H}, {W}), or soft segments of "
            f"shape ({H}, {W}, C); got shape {a.shape}"
        )
    if not np.issubdtype(a.dtype, np.integer):
        if np.issubdtype(a.dtype, np.floating) and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            raise TypeError(f"init labels must be integers, got dtype {a.dtype}")
    labels = a.reshape(N)
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= n_components:
        raise ValueError(
            f"init labels must lie in [0, n_components - 1] = [0, {n_components - 1}], "
            f"got values in [{lo}, {hi}]"
        )
    alpha = np.zeros((N, n_components))
    alpha[np.arange(N), labels] = 1.0
    return alpha


def _laplacian_ones(laplacian_ones, N):
    if laplacian_ones is None:
        return None
    if sp.issparse(laplacian_ones) or (
        isinstance(laplacian_ones, np.ndarray) and laplacian_ones.ndim == 2
    ):
        if laplacian_ones.shape != (N, N):
            raise ValueError(
                f"laplacian_ones given as a matrix must be the ({N}, {N}) Laplacian, "
                f"got shape {laplacian_ones.shape}"
            )
        v = np.asarray(laplacian_ones @ np.ones(N), dtype=np.float64).ravel()
    else:
        v = np.asarray(laplacian_ones, dtype=np.float64)
        if v.shape != (N,):
            raise ValueError(
                f"laplacian_ones must be the vector L·1 of shape ({N},) or L itself, "
                f"got shape {v.shape}"
            )
    if not np.isfinite(v).all():
        raise ValueError("laplacian_ones has non-finite entries (NaN or inf)")
    return v


def prune_schedule(iterations, prune_every=None):
    """The 1-based iterations after whose solve components are pruned (§10.3, §14.6).

    The test is ``it > remove_at`` with ``remove_at = ceil(iterations / 4)`` at first
    and ``remove_at += cycle`` after each prune, i.e. pruning after iterations
    ``r + 1, r + 1 + q, r + 1 + 2q, …`` (≤ ``iterations``) with ``r = ceil(iterations/4)``
    and ``q = prune_every``.

    The spec states ``remove_at = ceil(40/4) = 10`` and ``cycle = 10`` for the 40
    iterations SSS runs, giving 11, 21, 31.  It gives no formula for the cycle at other
    counts; we take ``q = ceil(iterations / 4)`` as well (prune once per quarter of the
    run), which reproduces 11, 21, 31 at 40.  Pass ``prune_every=10`` for a constant
    cycle.  A prune at the very last iteration (e.g. 13 iterations: 5, 9, 13) leaves the
    output without exact sum-to-one, as the released schedule would.

    Parameters
    ----------
    iterations : int
    prune_every : int, optional

    Returns
    -------
    list of int

    Examples
    --------
    >>> from unmix.spectral import prune_schedule
    >>> prune_schedule(40)                  # the released code's 40 iterations
    [11, 21, 31]
    >>> prune_schedule(40, prune_every=5)
    [11, 16, 21, 26, 31, 36]
    """
    iterations = integer("iterations", iterations, 1)
    r = math.ceil(iterations / 4)
    q = r if prune_every is None else integer("prune_every", prune_every, 1)
    return list(range(r + 1, iterations + 1, q))


# --------------------------------------------------------------------------- public API
def kmeans_init(features, n_components=40, random_state=0, n_init=1, max_samples=20000,
                fit_features=None):
    """Hard labels for the constrained stage: k-means on the preprocessed features (§10.2).

    Parameters
    ----------
    features : array_like, shape (H, W, D)
        Per-pixel features (the preprocessed 3-channel features F in SSS).
    n_components : int, optional
        Number of clusters C₀ (40 in SSS).
    random_state : int, numpy.random.Generator or RandomState, optional
        Seed of the subsample and of the k-means++ seeding.
    n_init : int, optional
        Number of k-means runs; the one of lowest inertia is kept (1, the
        default of MATLAB's ``kmeans``: the clusters only seed the IRLS,
        which re-forms and prunes them).
    max_samples : int or None, optional
        The cluster centres are fitted on a seeded random subset of at most
        this many pixels (20,000), then every pixel takes the label of its
        nearest centre. Three-dimensional features need no more to place 40
        centres (MATLAB's ``'cluster'`` start, which the released
        ``fastKmeans`` uses, seeds from a 10 % subsample in the same spirit),
        and it keeps this step at a fraction of a second at any image size.
        ``None`` fits on all pixels.
    fit_features : array_like, shape (H', W', D), optional
        Fit the centres on these features instead, and label ``features``
        with them. ``semantic_soft_segments(mode="fast")`` passes the
        full-resolution features, so that both modes start from the same
        clusters for the same seed.

    Returns
    -------
    labels : ndarray of int64, shape (H·W,)
        Row-major pixel labels in ``0 .. n_components − 1``.

    Notes
    -----
    The released code's ``fastKmeans`` (§10.4) is a randomised greedy
    splitting whose result changes from run to run; §10.4 allows any seeded
    k-means instead. The clusters only seed the IRLS, which re-forms and
    prunes them.

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.features import handcrafted_features
    >>> from unmix.image import example_image
    >>> from unmix.spectral import kmeans_init
    >>> F = handcrafted_features(example_image("coffee", (24, 32)))
    >>> labels = kmeans_init(F, n_components=8, random_state=0)
    >>> labels.shape, np.unique(labels).tolist()
    ((768,), [0, 1, 2, 3, 4, 5, 6, 7])
    """
    X = _feature_rows("features", features)
    X_fit = X if fit_features is None else _feature_rows("fit_features", fit_features)
    if X_fit.shape[1] != X.shape[1]:
        raise ValueError(
            f"fit_features must have the {X.shape[1]} channels of features, got {X_fit.shape[1]}"
        )
    n_components = integer("n_components", n_components, 1)
    n_init = integer("n_init", n_init, 1)
    if max_samples is not None:
        max_samples = integer("max_samples", max_samples, n_components)
    if n_components > X_fit.shape[0]:
        raise ValueError(
            f"n_components must be at most the number of pixels ({X_fit.shape[0]}), got {n_components}"
        )
    return nearest_centre(X, seeded_kmeans(X_fit, n_components, random_state, n_init, max_samples))


def _feature_rows(name, features):
    """(H, W, D) features as finite float64 rows (H·W, D)."""
    F = as_array(features, name)
    if F.ndim != 3 or F.size == 0:
        raise ValueError(f"{name} must have shape (H, W, D), got an array of shape {F.shape}")
    if not (np.issubdtype(F.dtype, np.floating) or np.issubdtype(F.dtype, np.integer)):
        raise TypeError(f"{name} must be real, got dtype {F.dtype}")
    X = np.asarray(F.reshape(-1, F.shape[2]), dtype=np.float64)
    if not np.isfinite(X).all():
        raise ValueError(f"{name} have non-finite values (NaN or inf)")
    return X


def constrained_sparsification(
    eigvecs,
    eigvals,
    init,
    shape,
    n_components=40,
    iterations=40,
    sparsity=0.8,
    prune_threshold=0.1,
    *,
    laplacian_ones=None,
    prune_every=None,
    max_refine=10,
    n_threads=None,
    device=None,
    progress=False,
    return_info=False,
):
    """Soft segments from eigenvectors by constrained sparsification (spec §10).

    Minimises, by IRLS in the span of the eigenvectors, the Laplacian energy plus the
    sparsity penalty :math:`|α|^γ + |1 - α|^γ` (paper Eq. 2 with the released code's
    Laplacian term and weights), with the layers summing to one exactly: the last
    component is dependent, α_C = 1 − Σ_{k<C} α_k.  Components whose
    ``max_p |α_pk|`` does not exceed ``prune_threshold`` are removed on a fixed schedule
    (:func:`prune_schedule`); the last kept one becomes the dependent one (§14.7).

    Parameters
    ----------
    eigvecs : array_like, shape (N, K)
        Orthonormal eigenvectors E of the Laplacian, N = H·W pixels in row-major order
        (the stage uses EᵀLE = Λ).
    eigvals : array_like, shape (K,)
        Their eigenvalues Λ.
    init : array_like
        Either hard labels, integers of shape (N,) or (H, W) in ``0 .. n_components−1``
        (one-hot initialisation, §10.2; see :func:`kmeans_init`), or initial soft
        segments of shape (H, W, C), used as they are (then C = ``init.shape[2]`` and
        ``n_components`` is not used).
    shape : tuple of int
        (H, W) with H·W = N.
    n_components : int, optional
        Number of initial components C₀ for a label initialisation (40 in SSS).
    iterations : int, optional
        IRLS iterations (40 in SSS).
    sparsity : float, optional
        The exponent γ in (0, 2) (0.8 in SSS).
    prune_threshold : float, optional
        A component is kept at a pruning step only if ``max_p |α_pk|`` exceeds it (0.1).
    laplacian_ones : array_like or sparse matrix, optional
        The vector L·1 (shape (N,)), or the Laplacian L itself.  It enters the right-hand
        side b_C = Eᵀe0_C + Eᵀ(L·1) and the energy.  ``None`` means L·1 = 0, exact for the
        unnormalised Laplacian that SSS uses; pass it for the normalised one (§8).
    prune_every : int, optional
        Pruning cycle; ``ceil(iterations/4)`` by default (see :func:`prune_schedule`).
    max_refine : int, optional
        Most iterative-refinement steps of each block solve (typically 1–4 are taken).
    n_threads : int, optional
        Pixel ranges whose passes (weights, Gram products) run concurrently, on at most
        as many threads as the process has CPUs; all of those by default. The Gram sums
        are added range by range, so their number changes the rounding, which this
        stage amplifies (spec §10): fix it to compare runs on different machines.
        No effect on the GPU.
    device : {None, "cpu", "gpu"}, optional
        Where the per-pixel passes run (α = E y, the IRLS weights and the weighted Gram
        products, which are the stage's cost): ``None`` runs where ``eigvecs`` is (on
        the GPU for a CuPy array), ``"cpu"`` in Numba kernels on ``n_threads`` threads,
        ``"gpu"`` on CuPy.  The K×K block solves run on the CPU either way.  The GPU
        adds its sums in another order, so its results differ from the CPU's by
        rounding, which this stage amplifies (as for ``n_threads``).
    progress : bool, optional
        Show a tqdm progress bar.
    return_info : bool, optional
        Also return a dict of diagnostics (below).

    Returns
    -------
    alphas : ndarray, shape (H, W, C)
        The soft segments, C ≈ 15–25 for SSS defaults.  They sum to one exactly (to
        rounding) unless a prune fell on the last iteration.  Not clamped.  A CuPy
        array if ``eigvecs`` is one, else a NumPy array (also after a GPU run).
    info : dict
        Only if ``return_info``:

        ``energy`` (iterations,)
            E_c (§10.1) of each iteration's solution, before that iteration's pruning.
        ``n_components`` (iterations,)
            C in each iteration's solve.
        ``prune_iterations``
            The 1-based iterations after which the pruning test ran.
        ``kept`` (C,)
            Indices, into the initial components, of the returned layers.
        ``refine_steps``, ``backward_error`` (iterations,)
            Iterative-refinement steps and final componentwise backward error of each
            block solve.
        ``timings``
            Seconds spent in ``weights`` (α = E y and the IRLS weights), ``grams``
            (the weighted Gram products and right-hand sides), ``solve`` (the block
            solves) and ``prune``, summed over the iterations.

    Raises
    ------
    ValueError, TypeError
        On malformed inputs (``device`` included); the message names the argument.
    unmix._backend.GPUUnavailableError
        For the GPU without CuPy or a CUDA device (an ImportError).

    Warns
    -----
    ConvergenceWarning
        If a block solve's backward error stays above 1e-8 after refinement (the
        result is returned regardless).

    Notes
    -----
    The dependent component's Laplacian energy is
    ``α_CᵀLα_C = 1ᵀL1 − 2 (Eᵀ L1)ᵀ s + sᵀ Λ s`` with ``s = Σ_{k<C} y_k``.

    Examples
    --------
    Soft segments from the 10 smallest eigenvectors of a small photograph's
    matting Laplacian, started from 8 k-means clusters:

    >>> import numpy as np
    >>> from unmix.features import handcrafted_features
    >>> from unmix.graph import matting_laplacian
    >>> from unmix.image import example_image
    >>> from unmix.spectral import kmeans_init, smallest_eigenpairs
    >>> image = example_image("coffee", (18, 24))
    >>> F = handcrafted_features(image)
    >>> L = matting_laplacian(image)
    >>> eigvals, eigvecs = smallest_eigenpairs(L, 10, shape=(18, 24))
    >>> init = kmeans_init(F, n_components=8)
    >>> from unmix.spectral import constrained_sparsification
    >>> alphas = constrained_sparsification(eigvecs, eigvals, init, (18, 24), n_components=8,
    ...                                     iterations=10)
    >>> alphas.shape[:2], alphas.shape[2] <= 8     # pruning may drop components
    ((18, 24), True)
    >>> bool(np.abs(alphas.sum(axis=2) - 1).max() < 1e-6)
    True
    """
    backend = get_backend(device, eigvecs)
    E, lam, shape = _validate_eigs(eigvecs, eigvals, shape, backend)
    N, K = E.shape
    n_components = integer("n_components", n_components, 2)
    iterations = integer("iterations", iterations, 1)
    gamma = real("sparsity", sparsity, 0.0, 2.0, low_open=True, high_open=True)
    prune_threshold = real("prune_threshold", prune_threshold, 0.0)
    max_refine = integer("max_refine", max_refine, 0)
    n_threads = default_threads() if n_threads is None else integer("n_threads", n_threads, 1)
    schedule = set(prune_schedule(iterations, prune_every))
    l1 = _laplacian_ones(to_host(laplacian_ones), N)
    alpha = backend.asarray(_initial_alpha(to_host(init), shape, n_components))
    kept = np.arange(alpha.shape[1])

    Et_l1 = None if l1 is None else to_host(E.T @ backend.asarray(l1))
    ones_L_ones = 0.0 if l1 is None else float(l1.sum())
    kappa = 2.0 * _WEIGHT_BASE**gamma / gamma  # E_c's sparsity weight (§10.1)

    info = {
        "energy": np.full(iterations, np.nan),
        "n_components": np.zeros(iterations, dtype=np.int64),
        "prune_iterations": sorted(schedule),
        "refine_steps": np.zeros(iterations, dtype=np.int64),
        "backward_error": np.zeros(iterations),
        "timings": dict.fromkeys(("weights", "grams", "solve", "prune"), 0.0),
    }
    tm = info["timings"]
    worst_berr = 0.0

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=iterations, desc="constrained sparsification", leave=False)
    try:
        with single_threaded_blas():
            work = _pixel_work(E, backend, n_threads)
            t = time.perf_counter()
            weights = work.update(None, alpha, gamma)[0]
            tm["weights"] += time.perf_counter() - t
            for it in range(1, iterations + 1):
                C = alpha.shape[1]
                m = C - 1
                info["n_components"][it - 1] = C

                # A_k = Eᵀ diag(e0_k + e1_k) E + Λ for every k, the dependent one
                # included; r_k = b_k + b_C, b_k = Eᵀ e1_k, b_C = Eᵀ e0_C + Eᵀ(L·1) (§10.3).
                t = time.perf_counter()
                A, B = work.grams(weights)
                A[:, np.arange(K), np.arange(K)] += lam
                bC = B[:, m] if Et_l1 is None else B[:, m] + Et_l1
                r = (B[:, :m] + bC[:, None]).T  # (m, K)
                tm["grams"] += time.perf_counter() - t

                t = time.perf_counter()
                if m > 0:
                    y, steps, berr = _solve_block_system(A, r, max_refine)
                else:  # a single component left: it is the constant 1
                    y, steps, berr = np.zeros((0, K)), 0, 0.0
                info["refine_steps"][it - 1] = steps
                info["backward_error"][it - 1] = berr
                worst_berr = max(worst_berr, berr)
                # Σ_k α_kᵀLα_k = Σ_{k<C} y_kᵀΛy_k + α_CᵀLα_C, α_CᵀLα_C = 1ᵀL1 − 2(EᵀL1)ᵀs + sᵀΛs
                s = y.sum(axis=0)
                lap = float(np.einsum("kj,j,kj->", y, lam, y)) + float(s @ (lam * s))
                if Et_l1 is not None:
                    lap += ones_L_ones - 2.0 * float(Et_l1 @ s)
                tm["solve"] += time.perf_counter() - t

                # α = E y, α_C = 1 − Σ others; the next weights and E_c of this iterate.
                t = time.perf_counter()
                weights, sparse_sum, max_abs = work.update(np.ascontiguousarray(y.T), alpha, gamma)
                info["energy"][it - 1] = lap + kappa * float(sparse_sum.sum())
                tm["weights"] += time.perf_counter() - t

                if it in schedule:
                    # Keep max_p |α_pk| > threshold (§10.3); the last kept one becomes the
                    # dependent component at the next solve (§14.7).  Weights are
                    # per-layer, so pruning them is selecting columns.
                    t = time.perf_counter()
                    keep = np.flatnonzero(max_abs > prune_threshold)
                    if keep.size == 0:  # impossible for sum-to-one layers unless threshold ≥ 1/C
                        keep = np.array([int(np.argmax(max_abs))])
                    if keep.size < C:
                        log.debug("constrained sparsification: iteration %d keeps %d of %d "
                                  "components", it, keep.size, C)
                        alpha, weights = work.select(alpha, weights, keep)
                        kept = kept[keep]
                    backend.synchronize()
                    tm["prune"] += time.perf_counter() - t
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(C=alpha.shape[1])
    finally:
        if bar is not None:
            bar.close()

    if worst_berr > _BERR_WARN:
        warnings.warn(
            f"constrained sparsification: a block solve kept a backward error of {worst_berr:.1e} "
            f"after {max_refine} refinement steps (tolerance {_BERR_WARN:g}); the result is "
            "returned but may be inaccurate",
            ConvergenceWarning,
            stacklevel=2,
        )
    info["kept"] = kept
    if alpha.base is not None:  # pruned in place: release the buffer's unused tail
        alpha = alpha.copy()
    # As the caller's eigvecs are: NumPy in, NumPy out (also from the GPU), CuPy in, CuPy out.
    out = like_input(alpha.reshape(shape[0], shape[1], alpha.shape[1]), eigvecs)
    return (out, info) if return_info else out
