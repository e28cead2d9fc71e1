"""Sparse colour unmixing: per-pixel alphas and layer colours (spec ``color.md`` §4–5).

At each pixel with colour c, with K colour models N(μ_i, Σ_i), the layers'
alphas α and colours u minimise (Aksoy et al. 2017, Eq. 4 and §4.1)

    F_S(α, u) = Σ_i α_i D_i(u_i) + σ (Σ_i α_i / Σ_i α_i² − 1),     σ = 10,

subject to Σ_i α_i u_i = c (colour, Eq. 1), Σ_i α_i = 1 (alpha, Eq. 2) and
α_i, u_i ∈ [0, 1] (box, Eq. 3), with D_i the squared Mahalanobis distance.
Two solvers, both vectorised over pixels with Numba:

- ``method="mom"``: the paper's method of multipliers (§4.2) with its
  constants λ₀ = ρ₀ = 0.1, β = 10, κ = 0.25, linear residuals and a
  box-constrained spectral projected gradient as inner solver.
- ``method="fast"``: the reduced problem of §5 (derived for ``unmix``). For
  fixed α the optimal colours have a closed form (§5.1,
  :func:`closed_form_colors`), and substituting them leaves a K-dimensional
  problem on the probability simplex, G(α) = rᵀ M⁻¹ r + σ (1/‖α‖² − 1),
  with M = Σ_j α_j Σ_j and r = c − Σ_j α_j μ_j (§5.2), minimised by
  spectral projected gradient from the same initialisation, finished by
  Newton steps on the face of the simplex it identifies (the K×K Hessian
  of G is cheap in closed form; ``unmix``'s own accelerator, which keeps
  the projected gradient's stopping test). The colours are then brought
  into the box (§5.3) without breaking the colour constraint (see
  :func:`closed_form_colors`).

Both start from the paper's initialisation (§4.1): the model nearest to c
takes the whole pixel.
"""

import math
import warnings

import numpy as np

from .._checks import as_array, real, real_array
from numba import njit, prange

from .._numba import threads_for
from ..exceptions import ConvergenceWarning
from .models import _check_models

__all__ = [
    "SPARSITY",
    "closed_form_colors",
    "initial_solution",
    "sparse_color_unmixing",
    "unmixing_energy",
]

#: σ, the weight of the sparsity term (paper §4).
SPARSITY = 10.0

#: Floor of Σ α² in the sparsity term (spec §4.1: all alphas zero is excluded).
_TINY = 1e-12

#: Pixels per parallel work item (scratch buffers are allocated once per item).
_CHUNK = 256


def _pixels(colors, name="pixels"):
    arr = real_array(colors, name)
    if arr.ndim < 1 or arr.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., 3) (RGB colours), got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"{name} must be finite colours in [0, 1]")
    return np.ascontiguousarray(arr.reshape(-1, 3))


def _alphas(alphas, n, k, name="alphas"):
    arr = real_array(alphas, name)
    if arr.size != n * k or arr.shape[-1] != k:
        raise ValueError(f"{name} must have shape (..., {k}) with one row per pixel, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return np.ascontiguousarray(arr.reshape(n, k))


# ----------------------------------------------------------------------------- kernels


@njit(cache=True)
def _inverse3(m00, m01, m02, m11, m12, m22):
    """The six entries of the inverse of a symmetric positive definite 3×3 matrix.

    By the adjugate: one division and no square root, a shorter chain of
    dependent operations than a Cholesky solve in the per-pixel inner loop.
    """
    a00 = m11 * m22 - m12 * m12
    a01 = m02 * m12 - m01 * m22
    a02 = m01 * m12 - m02 * m11
    scale = 1.0 / (m00 * a00 + m01 * a01 + m02 * a02)
    return (a00 * scale, a01 * scale, a02 * scale, (m00 * m22 - m02 * m02) * scale,
            (m01 * m02 - m00 * m12) * scale, (m00 * m11 - m01 * m01) * scale)


@njit(cache=True)
def _apply3(inverse, r0, r1, r2):
    """M⁻¹ r with M⁻¹ given by :func:`_inverse3`."""
    i00, i01, i02, i11, i12, i22 = inverse
    return (i00 * r0 + i01 * r1 + i02 * r2, i01 * r0 + i11 * r1 + i12 * r2,
            i02 * r0 + i12 * r1 + i22 * r2)


@njit(cache=True)
def _multiplier(a, c, means, covs):
    """v = M(α)⁻¹ r(α) of §5.1 (the colour constraint's multiplier, up to a factor).

    Returns M⁻¹ (:func:`_inverse3`), v and the reduced data term rᵀ M⁻¹ r.
    """
    m00 = m01 = m02 = m11 = m12 = m22 = 0.0
    r0, r1, r2 = c[0], c[1], c[2]
    for k in range(a.shape[0]):
        ak = a[k]
        if ak == 0.0:
            continue
        m00 += ak * covs[k, 0, 0]
        m01 += ak * covs[k, 0, 1]
        m02 += ak * covs[k, 0, 2]
        m11 += ak * covs[k, 1, 1]
        m12 += ak * covs[k, 1, 2]
        m22 += ak * covs[k, 2, 2]
        r0 -= ak * means[k, 0]
        r1 -= ak * means[k, 1]
        r2 -= ak * means[k, 2]
    inverse = _inverse3(m00, m01, m02, m11, m12, m22)
    v0, v1, v2 = _apply3(inverse, r0, r1, r2)
    return inverse, v0, v1, v2, r0 * v0 + r1 * v1 + r2 * v2


@njit(cache=True)
def _sparsity(a, sigma, grad):
    """σ (Σα / Σα² − 1); adds its gradient to ``grad`` (spec §4.1)."""
    total = 0.0
    squares = 0.0
    for k in range(a.shape[0]):
        total += a[k]
        squares += a[k] * a[k]
    squares = max(squares, _TINY)
    for k in range(a.shape[0]):
        grad[k] += sigma * (squares - 2.0 * a[k] * total) / (squares * squares)
    return sigma * (total / squares - 1.0)


# Objective of the reduced problem (on the simplex) and the augmented
# Lagrangian of the method of multipliers (on the box), behind one
# signature so that one projected-gradient loop serves both.
_REDUCED, _LAGRANGIAN = 0, 1


@njit(cache=True)
def _objective(kind, x, grad, data):
    c, means, covs, precisions, sigma, lam, rho, frozen, residual = data
    n_layers = means.shape[0]
    if kind == _REDUCED:
        _, v0, v1, v2, value = _multiplier(x, c, means, covs)
        for k in range(n_layers):
            s = covs[k]
            # ∂(rᵀM⁻¹r)/∂α_k = −2 μ_kᵀ v − vᵀ Σ_k v   (∂r/∂α_k = −μ_k, ∂M/∂α_k = Σ_k)
            grad[k] = (-2.0 * (means[k, 0] * v0 + means[k, 1] * v1 + means[k, 2] * v2
                               + s[0, 1] * v0 * v1 + s[0, 2] * v0 * v2 + s[1, 2] * v1 * v2)
                       - (s[0, 0] * v0 * v0 + s[1, 1] * v1 * v1 + s[2, 2] * v2 * v2))
        return value + _sparsity(x, sigma, grad)
    return _lagrangian(x, grad, c, means, precisions, sigma, lam, rho, frozen, residual)


@njit(cache=True)
def _residual(x, c, n_layers, residual):
    """g(x): the colour residual Σ α_i u_i − c, then the alpha residual Σ α_i − 1."""
    residual[0] = -c[0]
    residual[1] = -c[1]
    residual[2] = -c[2]
    residual[3] = -1.0
    for k in range(n_layers):
        a = x[k]
        base = n_layers + 3 * k
        residual[0] += a * x[base]
        residual[1] += a * x[base + 1]
        residual[2] += a * x[base + 2]
        residual[3] += a


@njit(cache=True)
def _lagrangian(x, grad, c, means, precisions, sigma, lam, rho, frozen, residual):
    """L = F_S + λᵀg + ρ/2 ‖g‖² and its gradient (spec §4.2).

    ``frozen`` zeroes the alpha gradient: the alphas keep their values (the
    colour refinement of §7, V-SENSE's variant).
    """
    n_layers = means.shape[0]
    _residual(x, c, n_layers, residual)
    w0 = lam[0] + rho * residual[0]
    w1 = lam[1] + rho * residual[1]
    w2 = lam[2] + rho * residual[2]
    w3 = lam[3] + rho * residual[3]
    value = 0.0
    for k in range(n_layers):
        a = x[k]
        base = n_layers + 3 * k
        p = precisions[k]
        d0 = x[base] - means[k, 0]
        d1 = x[base + 1] - means[k, 1]
        d2 = x[base + 2] - means[k, 2]
        q0 = p[0, 0] * d0 + p[0, 1] * d1 + p[0, 2] * d2
        q1 = p[1, 0] * d0 + p[1, 1] * d1 + p[1, 2] * d2
        q2 = p[2, 0] * d0 + p[2, 1] * d1 + p[2, 2] * d2
        dist = d0 * q0 + d1 * q1 + d2 * q2
        value += a * dist
        # ∂/∂α_k: D_k(u_k) + (λ + ρg)ᵀ ∂g/∂α_k;  ∂/∂u_k: 2 α_k Σ_k⁻¹ (u_k − μ_k) + α_k (λ + ρg)_rgb
        grad[k] = 0.0 if frozen else dist + w0 * x[base] + w1 * x[base + 1] + w2 * x[base + 2] + w3
        grad[base] = a * (2.0 * q0 + w0)
        grad[base + 1] = a * (2.0 * q1 + w1)
        grad[base + 2] = a * (2.0 * q2 + w2)
    if sigma > 0:
        value += _sparsity(x[:n_layers], sigma, grad[:n_layers])
        if frozen:
            grad[:n_layers] = 0.0
    for i in range(4):
        value += lam[i] * residual[i] + 0.5 * rho * residual[i] * residual[i]
    return value


@njit(cache=True)
def _project(kind, y, out, n_layers, scratch):
    """Euclidean projection onto the simplex (reduced problem) or the box [0, 1]."""
    if kind == _LAGRANGIAN:
        for i in range(y.shape[0]):
            out[i] = min(max(y[i], 0.0), 1.0)
        return
    # Simplex: sort descending (K is small: insertion sort), find the threshold θ.
    for i in range(n_layers):
        value = y[i]
        j = i
        while j > 0 and scratch[j - 1] < value:
            scratch[j] = scratch[j - 1]
            j -= 1
        scratch[j] = value
    total = 0.0
    theta = 0.0
    for i in range(n_layers):
        total += scratch[i]
        t = (total - 1.0) / (i + 1)
        if scratch[i] > t:
            theta = t
    for i in range(n_layers):
        out[i] = max(y[i] - theta, 0.0)


@njit(cache=True)
def _newton_direction(x, g, data, z, work):
    """Newton direction of the reduced energy G on the face {α_k > 0} of the simplex (§5.2).

    With w_k = μ_k + Σ_k v (the closed-form colour u_k of §5.1) the data
    term rᵀM⁻¹r has the Hessian 2 w_kᵀ M⁻¹ w_l (from ∂v/∂α_l = −M⁻¹ w_l);
    the sparsity term σ (s/q − 1), s = Σα, q = Σα², adds
    σ (8 s α_k α_l / q³ − 2 (α_k + α_l) / q² − 2 s δ_kl / q²). On the face,
    Σ z = 0 is kept by eliminating the largest free alpha (the pivot p):
    z_p = −Σ_{i≠p} z_i, reduced Hessian B_ij = H_ij − H_ip − H_pj + H_pp and
    reduced gradient g_i − g_p.

    Writes the direction to ``z`` (zero off the face) and returns True, or
    returns False where the face is a vertex or B is not positive definite
    (the sparsity term makes G non-convex), leaving the step to the
    projected gradient. ``work`` is (K, K + 10) scratch.
    """
    c, means, covs, sigma = data[0], data[1], data[2], data[4]
    n_layers = x.shape[0]
    inverse, v0, v1, v2, _ = _multiplier(x, c, means, covs)
    # Compact the free layers: columns K…K+2 w, K+3…K+5 M⁻¹w, K+6 g, K+7 α.
    col = n_layers
    m = 0
    pivot = 0
    pivot_layer = -1
    total = 0.0
    squares = 0.0
    for k in range(n_layers):
        total += x[k]
        squares += x[k] * x[k]
        if x[k] <= 0.0:
            continue
        s = covs[k]
        w0 = means[k, 0] + s[0, 0] * v0 + s[0, 1] * v1 + s[0, 2] * v2
        w1 = means[k, 1] + s[1, 0] * v0 + s[1, 1] * v1 + s[1, 2] * v2
        w2 = means[k, 2] + s[2, 0] * v0 + s[2, 1] * v1 + s[2, 2] * v2
        q0, q1, q2 = _apply3(inverse, w0, w1, w2)
        row = work[m]
        row[col], row[col + 1], row[col + 2] = w0, w1, w2
        row[col + 3], row[col + 4], row[col + 5] = q0, q1, q2
        row[col + 6] = g[k]
        row[col + 7] = x[k]
        if x[k] > work[pivot, col + 7] or m == 0:
            pivot = m
            pivot_layer = k
        m += 1
    if m < 2:
        return False
    squares = max(squares, _TINY)
    cross = 8.0 * sigma * total / (squares * squares * squares)
    linear = 2.0 * sigma / (squares * squares)
    # Column K+8: H_ip, the Hessian's column at the pivot.
    for i in range(m):
        work[i, col + 8] = _hessian_entry(work, i, pivot, col, cross, linear, total)
    h_pp = work[pivot, col + 8]
    # B (columns 0…m−2) and −(g_i − g_p) (column K+9), over the free layers but the pivot.
    for i in range(m - 1):
        a = i + (i >= pivot)
        for j in range(i + 1):
            b = j + (j >= pivot)
            work[i, j] = (_hessian_entry(work, a, b, col, cross, linear, total)
                          - work[a, col + 8] - work[b, col + 8] + h_pp)
        work[i, col + 9] = work[pivot, col + 6] - work[a, col + 6]
    # In-place Cholesky of B; a pivot below rounding level means B is not positive definite.
    for j in range(m - 1):
        d = work[j, j]
        for t in range(j):
            d -= work[j, t] * work[j, t]
        if not d > 1e-12 * abs(work[j, j]):
            return False
        d = math.sqrt(d)
        work[j, j] = d
        for i in range(j + 1, m - 1):
            e = work[i, j]
            for t in range(j):
                e -= work[i, t] * work[j, t]
            work[i, j] = e / d
    for i in range(m - 1):  # forward substitution
        e = work[i, col + 9]
        for t in range(i):
            e -= work[i, t] * work[t, col + 9]
        work[i, col + 9] = e / work[i, i]
    for i in range(m - 2, -1, -1):  # back substitution
        e = work[i, col + 9]
        for t in range(i + 1, m - 1):
            e -= work[t, i] * work[t, col + 9]
        work[i, col + 9] = e / work[i, i]
    # Scatter back to the K layers, with z_p = −Σ z_i.
    i = 0
    rest = 0.0
    for k in range(n_layers):
        if x[k] > 0.0:
            if i != pivot:
                z[k] = work[i - (i > pivot), col + 9]
                rest += z[k]
            i += 1
        else:
            z[k] = 0.0
    z[pivot_layer] = -rest
    return True


@njit(cache=True)
def _hessian_entry(work, i, j, col, cross, linear, total):
    """∂²G/∂α_i∂α_j for the compacted free layers i, j of :func:`_newton_direction`."""
    wi = work[i]
    wj = work[j]
    value = (2.0 * (wi[col] * wj[col + 3] + wi[col + 1] * wj[col + 4] + wi[col + 2] * wj[col + 5])
             + cross * wi[col + 7] * wj[col + 7] - linear * (wi[col + 7] + wj[col + 7]))
    if i == j:
        value -= linear * total
    return value


@njit(cache=True)
def _spg(kind, x, data, tol, max_iter, work, newton_work):
    """Spectral projected gradient (Birgin, Martínez, Raydan 2000), monotone Armijo search.

    Minimises ``_objective(kind, ·)`` over the simplex or the box from ``x``
    (in place) until the projected gradient ‖P(x − ∇f) − x‖∞ ≤ ``tol``.
    On the simplex, once P(x − ∇f) keeps the support of x (the active face
    is identified), a Newton step on that face (:func:`_newton_direction`,
    ``newton_work`` its scratch) replaces the gradient step when the face's
    Hessian is positive definite: the projected gradient needs tens of
    iterations to reach the tolerance, Newton converges quadratically there.
    Returns (iterations, final projected-gradient norm).
    """
    g, gn, d, xn, scratch = work[0], work[1], work[2], work[3], work[4]
    n = x.shape[0]
    n_layers = data[1].shape[0]
    f = _objective(kind, x, g, data)
    step = 1.0
    stationarity = math.inf
    for it in range(max_iter):
        for i in range(n):
            xn[i] = x[i] - g[i]
        _project(kind, xn, d, n_layers, scratch)
        stationarity = 0.0
        face = kind == _REDUCED
        for i in range(n):
            stationarity = max(stationarity, abs(d[i] - x[i]))
            face = face and ((d[i] > 0.0) == (x[i] > 0.0))
        if stationarity <= tol:
            return it, stationarity
        # Once P(x − ∇f) keeps the support of x, the face is taken as identified
        # and a Newton step on it is tried first. ``longest``: the step length 1,
        # or up to the first alpha the Newton step zeroes (``block``).
        longest = 1.0
        block = -1
        slope = 0.0
        newton = face and _newton_direction(x, g, data, d, newton_work)
        if newton:
            for i in range(n):
                slope += g[i] * d[i]
                if d[i] < 0.0 and x[i] + longest * d[i] < 0.0:
                    longest = -x[i] / d[i]
                    block = i
            newton = slope < 0.0
        if not newton:
            block = -1
            longest = 1.0
            slope = 0.0
            for i in range(n):
                xn[i] = x[i] - step * g[i]
            _project(kind, xn, d, n_layers, scratch)
            for i in range(n):
                d[i] -= x[i]
                slope += g[i] * d[i]
            if slope >= 0.0:
                return it, stationarity
        # Near the minimiser the decrease a Newton step promises falls below the
        # rounding of f: the full step is then accepted within that rounding.
        noise = 1e-12 * abs(f) if newton else 0.0
        t = longest
        accepted = False
        for _ in range(50):
            # A Newton step cut at ``longest`` puts the blocking alpha exactly on 0
            # (the next face) and clamps the others' rounding below 0.
            for i in range(n):
                xn[i] = max(x[i] + t * d[i], 0.0) if block >= 0 else x[i] + t * d[i]
            if t == longest and block >= 0:
                xn[block] = 0.0
            fn = _objective(kind, xn, gn, data)
            if fn <= f + 1e-4 * t * slope + noise:
                accepted = True
                break
            t *= 0.5
            noise = 0.0
        if not accepted:  # no decrease left at rounding level
            return it, stationarity
        ss = 0.0
        sy = 0.0
        for i in range(n):
            s = xn[i] - x[i]
            y = gn[i] - g[i]
            ss += s * s
            sy += s * y
            x[i] = xn[i]
            g[i] = gn[i]
        f = fn
        if newton and ss == 0.0:  # the Newton step is below the rounding of x
            return it + 1, stationarity
        step = min(max(ss / sy, 1e-12), 1e12) if sy > 0 else 1e12
    return max_iter, stationarity


@njit(cache=True, parallel=True)
def _reduced_batch(pixels, alphas, means, covs, sigma, tol, max_iter, iterations, stationarity):
    n_pixels, n_layers = alphas.shape
    # The Lagrangian's slots of the objective's data are unused here.
    no_precisions = np.empty((0, 3, 3))
    unused = np.empty(0)
    for chunk in prange((n_pixels + _CHUNK - 1) // _CHUNK):
        work = np.empty((5, n_layers))
        newton_work = np.empty((n_layers, n_layers + 10))
        for p in range(chunk * _CHUNK, min((chunk + 1) * _CHUNK, n_pixels)):
            data = (pixels[p], means, covs, no_precisions, sigma, unused, 0.0, False, unused)
            iterations[p], stationarity[p] = _spg(_REDUCED, alphas[p], data, tol, max_iter, work,
                                                  newton_work)


@njit(cache=True, parallel=True)
def _mom_batch(pixels, x, means, precisions, frozen, sigma, lam0, rho0, beta, kappa, tol,
               max_outer, inner_tol, max_inner, outer_iterations, violations):
    """Method of multipliers per pixel (spec §4.2), x = (α, u) in place."""
    n_pixels, n = x.shape
    n_layers = means.shape[0]
    no_covs = np.empty((0, 3, 3))  # the reduced problem's slots of the objective's data
    no_newton = np.empty((0, 0))
    for chunk in prange((n_pixels + _CHUNK - 1) // _CHUNK):
        work = np.empty((5, n))
        residual = np.empty(4)
        lam = np.empty(4)
        previous = np.empty(n)
        for p in range(chunk * _CHUNK, min((chunk + 1) * _CHUNK, n_pixels)):
            lam[:] = lam0
            rho = rho0
            _residual(x[p], pixels[p], n_layers, residual)
            norm_old = math.sqrt(np.sum(residual * residual))
            norm = norm_old
            outer = 0
            while outer < max_outer:
                outer += 1
                previous[:] = x[p]
                data = (pixels[p], means, no_covs, precisions, sigma, lam, rho, frozen, residual)
                _spg(_LAGRANGIAN, x[p], data, inner_tol, max_inner, work, no_newton)
                _residual(x[p], pixels[p], n_layers, residual)
                norm = math.sqrt(np.sum(residual * residual))
                for i in range(4):
                    lam[i] += rho * residual[i]
                if norm > kappa * norm_old:
                    rho *= beta
                step = 0.0
                for i in range(n):
                    step += (x[p, i] - previous[i]) ** 2
                if math.sqrt(step) < tol and norm < tol:
                    break
                norm_old = norm
            outer_iterations[p] = outer
            violations[p] = norm


@njit(cache=True, parallel=True)
def _closed_form_batch(pixels, alphas, means, covs, box, colors):
    """u_i = μ_i + Σ_i M⁻¹ r for α_i > 0, μ_i otherwise (spec §5.1); then the box repair."""
    n_pixels, n_layers = alphas.shape
    for p in prange(n_pixels):
        a = alphas[p]
        u = colors[p]
        _, v0, v1, v2, _ = _multiplier(a, pixels[p], means, covs)
        for k in range(n_layers):
            s = covs[k]
            step = 1.0 if a[k] > 0.0 else 0.0
            u[k, 0] = means[k, 0] + step * (s[0, 0] * v0 + s[0, 1] * v1 + s[0, 2] * v2)
            u[k, 1] = means[k, 1] + step * (s[1, 0] * v0 + s[1, 1] * v1 + s[1, 2] * v2)
            u[k, 2] = means[k, 2] + step * (s[2, 0] * v0 + s[2, 1] * v1 + s[2, 2] * v2)
        if box:
            _box_repair(a, pixels[p], covs, u)


@njit(cache=True)
def _box_repair(a, c, covs, u):
    """Clip u to [0, 1] and give the colour residual back to the layers with room.

    ``unmix``'s own repair of §5.3. Per channel, the residual e = c − Σ α_i u_i
    is shared as δ_i = e Σ_i[ch, ch] / Σ_j α_j Σ_j[ch, ch] over the layers
    that can still move towards it (the closed form of the colour problem
    with diagonal covariances), then clipped again. Because c ∈ [0, 1] and
    Σ α = 1, some layer always has room, so a few rounds restore the colour
    constraint exactly inside the box.
    """
    n_layers = a.shape[0]
    for _ in range(20):
        worst = 0.0
        for ch in range(3):
            e = c[ch]
            for k in range(n_layers):
                u[k, ch] = min(max(u[k, ch], 0.0), 1.0)
                e -= a[k] * u[k, ch]
            worst = max(worst, abs(e))
            if abs(e) <= 1e-14:
                continue
            weight = 0.0
            for k in range(n_layers):
                if a[k] > 0.0 and ((e > 0.0 and u[k, ch] < 1.0) or (e < 0.0 and u[k, ch] > 0.0)):
                    weight += a[k] * covs[k, ch, ch]
            if weight <= 0.0:
                continue
            for k in range(n_layers):
                if a[k] > 0.0 and ((e > 0.0 and u[k, ch] < 1.0) or (e < 0.0 and u[k, ch] > 0.0)):
                    u[k, ch] = min(max(u[k, ch] + e * covs[k, ch, ch] / weight, 0.0), 1.0)
        if worst <= 1e-14:
            return


@njit(cache=True, parallel=True)
def _nearest_batch(pixels, means, precisions, nearest):
    """Index of the model with the smallest D_i(c) at every pixel (the first on ties)."""
    for p in prange(pixels.shape[0]):
        c = pixels[p]
        best = math.inf
        for k in range(means.shape[0]):
            q = precisions[k]
            d0 = c[0] - means[k, 0]
            d1 = c[1] - means[k, 1]
            d2 = c[2] - means[k, 2]
            dist = (q[0, 0] * d0 * d0 + q[1, 1] * d1 * d1 + q[2, 2] * d2 * d2
                    + 2.0 * (q[0, 1] * d0 * d1 + q[0, 2] * d0 * d2 + q[1, 2] * d1 * d2))
            if dist < best:
                best = dist
                nearest[p] = k


def _initial_alphas(c, models):
    """§4.1's alphas: one at the nearest model, zero elsewhere; and that model's index."""
    nearest = np.zeros(c.shape[0], dtype=np.int64)
    with threads_for(c.shape[0]):
        _nearest_batch(c, models.means, models.precisions, nearest)
    alphas = np.zeros((c.shape[0], models.n_models))
    alphas[np.arange(c.shape[0]), nearest] = 1.0
    return alphas, nearest


# ----------------------------------------------------------------------------- public


def unmixing_energy(pixels, models, alphas, colors, sigma=SPARSITY):
    """F_S(α, u) per pixel (spec §4.1), without the constraints.

    Parameters
    ----------
    pixels : array_like, shape (..., 3)
        Unused by the energy itself; fixes the output shape.
    models : ColorModels
    alphas : array_like, shape (..., K)
    colors : array_like, shape (..., K, 3)
    sigma : float, optional
        σ (10).

    Returns
    -------
    energy : ndarray, shape ``pixels.shape[:-1]``

    Examples
    --------
    One layer costs nothing beyond its colour's fit; a half-half mixture pays the
    sparsity term σ (Σα / Σα² − 1) = 10:

    >>> import numpy as np
    >>> from unmix.color import ColorModels
    >>> models = ColorModels.from_palette([[0.9, 0.1, 0.1], [0.1, 0.1, 0.9]])   # red, blue
    >>> pixels = np.array([[0.9, 0.1, 0.1], [0.5, 0.1, 0.5]])                 # red, purple
    >>> from unmix.color import sparse_color_unmixing, unmixing_energy
    >>> alphas, colors = sparse_color_unmixing(pixels, models)
    >>> unmixing_energy(pixels, models, alphas, colors).round(6)
    array([ 0., 10.])
    """
    models = _check_models(models)
    shape = as_array(pixels, "pixels").shape[:-1]
    pixels = _pixels(pixels)
    k = models.n_models
    alphas = _alphas(alphas, pixels.shape[0], k)
    colors = real_array(colors, "colors")
    if colors.shape[-2:] != (k, 3) or colors.size != pixels.shape[0] * k * 3:
        raise ValueError(f"colors must have shape (..., {k}, 3) with one row per pixel of "
                         f"pixels, got {colors.shape}")
    colors = colors.reshape(pixels.shape[0], k, 3)
    sigma = real("sigma", sigma, 0.0)
    diff = colors - models.means
    dist = np.einsum("...ki,kij,...kj->...k", diff, models.precisions, diff)
    squares = np.maximum(np.sum(alphas * alphas, axis=-1), _TINY)
    energy = np.sum(alphas * dist, axis=-1) + sigma * (np.sum(alphas, axis=-1) / squares - 1.0)
    return energy.reshape(shape)


def initial_solution(pixels, models):
    """The paper's initialisation (spec §4.1): the nearest model takes the pixel.

    The layer with the smallest D_i(c) gets α = 1 and u = c; the others get
    α = 0 and u = μ_i.

    Returns
    -------
    alphas : ndarray, shape (..., K)
    colors : ndarray, shape (..., K, 3)

    Examples
    --------
    Each pixel starts entirely in its best model, with its own colour there:

    >>> import numpy as np
    >>> from unmix.color import ColorModels
    >>> models = ColorModels.from_palette([[0.9, 0.1, 0.1], [0.1, 0.1, 0.9]])   # red, blue
    >>> pixels = np.array([[0.9, 0.1, 0.1], [0.5, 0.1, 0.5]])                 # red, purple
    >>> from unmix.color import initial_solution
    >>> alphas, colors = initial_solution(pixels, models)
    >>> alphas
    array([[1., 0.],
           [1., 0.]])
    >>> colors[1, 0]
    array([0.5, 0.1, 0.5])
    """
    models = _check_models(models)
    shape = as_array(pixels, "pixels").shape[:-1]
    c = _pixels(pixels)
    alphas, nearest = _initial_alphas(c, models)
    colors = np.repeat(models.means[None], c.shape[0], axis=0)
    colors[np.arange(c.shape[0]), nearest] = c
    return alphas.reshape(shape + (-1,)), colors.reshape(shape + colors.shape[1:])


def closed_form_colors(pixels, models, alphas, clip=True):
    """The optimal layer colours for fixed alphas (spec §5.1).

    ``u_i = μ_i + Σ_i M⁻¹ r`` with ``M = Σ_j α_j Σ_j`` and
    ``r = c − Σ_j α_j μ_j``: the minimiser of Σ_i α_i D_i(u_i) under the
    colour constraint Σ_i α_i u_i = c. Layers with α_i = 0 take u_i = μ_i.
    This is also the colour refinement's fast path (§7).

    Parameters
    ----------
    pixels : array_like, shape (..., 3)
    models : ColorModels
    alphas : array_like, shape (..., K)
        Non-negative, not all zero at any pixel.
    clip : bool, optional
        Keep the colours in [0, 1] (the box constraint, §5.3): clip them
        and give the colour residual this leaves back to the layers that
        have room (``unmix``'s repair: per channel, in proportion to
        α_i Σ_i[ch, ch]), so that the colour constraint still holds. The
        repaired colours are not the exact box-constrained minimiser when
        the covariances are not diagonal.

    Returns
    -------
    colors : ndarray, shape (..., K, 3)

    Examples
    --------
    For fixed alphas, the colours of least energy that add up to the pixels:

    >>> import numpy as np
    >>> from unmix.color import ColorModels
    >>> models = ColorModels.from_palette([[0.9, 0.1, 0.1], [0.1, 0.1, 0.9]])   # red, blue
    >>> pixels = np.array([[0.9, 0.1, 0.1], [0.5, 0.1, 0.5]])                 # red, purple
    >>> from unmix.color import closed_form_colors
    >>> colors = closed_form_colors(pixels, models, np.array([[1.0, 0.0], [0.5, 0.5]]))
    >>> colors[1].round(3)
    array([[0.9, 0.1, 0.1],
           [0.1, 0.1, 0.9]])
    """
    models = _check_models(models)
    shape = as_array(pixels, "pixels").shape[:-1]
    c = _pixels(pixels)
    a = _alphas(alphas, c.shape[0], models.n_models)
    if a.min() < 0 or not np.all(a.max(axis=1) > 0):
        raise ValueError("alphas must be non-negative with a positive entry at every pixel")
    colors = np.empty(a.shape + (3,))
    with threads_for(c.shape[0]):
        _closed_form_batch(c, a, models.means, models.covariances, bool(clip), colors)
    return colors.reshape(shape + colors.shape[1:])


def sparse_color_unmixing(pixels, models, method="fast", sigma=SPARSITY, tol=1e-8, max_iter=None,
                          target_alphas=None, initial_colors=None, return_info=False):
    """Sparse colour unmixing of every pixel (spec §4–5).

    Parameters
    ----------
    pixels : array_like, shape (..., 3)
        Colours in [0, 1]: an image (H, W, 3) or a list of pixels.
    models : ColorModels
    method : {"fast", "mom"}, optional
        ``"fast"``: the reduced problem on the simplex with closed-form
        colours (§5), brought into the box by :func:`closed_form_colors`. ``"mom"``: the paper's
        method of multipliers (§4.2), faithful and about two orders of
        magnitude slower.
    sigma : float, optional
        σ, weight of the sparsity term (10).
    tol : float, optional
        ``"fast"``: projected-gradient tolerance. ``"mom"``: the outer stop
        ‖Δx‖ < tol and ‖g‖ < tol (Koyama's 1e-8), also the inner tolerance.
    max_iter : int, optional
        ``"fast"``: projected-gradient iterations per pixel (500).
        ``"mom"``: outer iterations (100); each inner solve takes at most 500.
    target_alphas : array_like, shape (..., K), optional
        ``"mom"`` only: the colour refinement of §7. The alphas are frozen
        at these α̂ (summing to one) and only the colours are solved for,
        from ``initial_colors``, under the colour and box constraints; the
        sparsity term is dropped. This is V-SENSE's variant: the paper's
        constraint Σ_i (α_i − α̂_i)² = 0 has a zero gradient where it
        holds, which turns the method of multipliers into a pure penalty
        method (measured: every pixel at the iteration limit, 0.2 s per
        pixel, Σ (α − α̂)² still about 1e-4).
    initial_colors : array_like, shape (..., K, 3), optional
        ``"mom"`` only: starting colours (clipped to [0, 1]) instead of
        §4.1's initialisation.
    return_info : bool, optional
        Also return a dict with per-pixel ``iterations`` and
        ``color_violation`` ‖Σ α_i u_i − c‖, and ``energy`` (F_S).

    Returns
    -------
    alphas : ndarray, shape (..., K)
    colors : ndarray, shape (..., K, 3)
    info : dict, only with ``return_info``

    Warns
    -----
    ConvergenceWarning
        When some pixels stop at the iteration limit.

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.color import ColorModels
    >>> models = ColorModels.from_palette([[0.9, 0.1, 0.1], [0.1, 0.1, 0.9]])   # red, blue
    >>> pixels = np.array([[0.9, 0.1, 0.1], [0.5, 0.1, 0.5]])                 # red, purple
    >>> from unmix.color import sparse_color_unmixing
    >>> alphas, colors = sparse_color_unmixing(pixels, models)
    >>> alphas
    array([[1. , 0. ],
           [0.5, 0.5]])
    >>> (alphas[..., None] * colors).sum(axis=-2)   # the colours add back up to the pixels
    array([[0.9, 0.1, 0.1],
           [0.5, 0.1, 0.5]])
    """
    models = _check_models(models)
    if method not in ("fast", "mom"):
        raise ValueError(f"method must be 'fast' or 'mom', got {method!r}")
    if not (isinstance(sigma, (int, float)) and sigma >= 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    shape = as_array(pixels, "pixels").shape[:-1]
    c = _pixels(pixels)
    n, k = c.shape[0], models.n_models
    if method == "fast" and (target_alphas is not None or initial_colors is not None):
        raise ValueError("target_alphas and initial_colors apply to method='mom' only; "
                         "the fast refinement is closed_form_colors")
    with threads_for(n):
        if method == "fast":
            # Only §4.1's alphas: the colours follow from them in closed form (§5.1).
            alphas, _ = _initial_alphas(c, models)
            max_iter = 500 if max_iter is None else max_iter
            iterations = np.zeros(n, dtype=np.int64)
            stationarity = np.zeros(n)
            _reduced_batch(c, alphas, models.means, models.covariances, float(sigma), tol,
                           max_iter, iterations, stationarity)
            # closed_form_colors without re-checking inputs validated above.
            colors = np.empty((n, k, 3))
            _closed_form_batch(c, alphas, models.means, models.covariances, True, colors)
            unconverged = int(np.count_nonzero(iterations >= max_iter))
        else:
            max_iter = 100 if max_iter is None else max_iter
            alphas, colors = initial_solution(c, models)
            np.clip(colors, 0.0, 1.0, out=colors)
            if initial_colors is not None:
                initial_colors = np.asarray(initial_colors, dtype=np.float64)
                if initial_colors.shape[-2:] != (k, 3) or initial_colors.size != n * k * 3:
                    raise ValueError(f"initial_colors must have shape (..., {k}, 3) with one "
                                     f"entry per pixel, got {initial_colors.shape}")
                colors = np.clip(initial_colors.reshape(n, k, 3), 0.0, 1.0)
            if target_alphas is not None:
                alphas = _alphas(target_alphas, n, k, "target_alphas")
                if alphas.min() < 0 or np.abs(alphas.sum(axis=1) - 1).max() > 1e-9:
                    raise ValueError("target_alphas must be non-negative and sum to one")
                sigma = 0.0
            x = np.ascontiguousarray(np.concatenate([alphas, colors.reshape(n, 3 * k)], axis=1))
            iterations = np.zeros(n, dtype=np.int64)
            violation = np.zeros(n)
            _mom_batch(c, x, models.means, models.precisions, target_alphas is not None, float(sigma), 0.1, 0.1,
                       10.0, 0.25, tol, max_iter, tol, 500, iterations, violation)
            alphas, colors = x[:, :k].copy(), x[:, k:].reshape(n, k, 3).copy()
            unconverged = int(np.count_nonzero(iterations >= max_iter))
    if unconverged:
        warnings.warn(f"sparse colour unmixing ({method}): {unconverged} of {n} pixels reached "
                      f"the iteration limit {max_iter} before the tolerance {tol:g}",
                      ConvergenceWarning, stacklevel=2)
    alphas_out = alphas.reshape(shape + (k,))
    colors_out = colors.reshape(shape + (k, 3))
    if not return_info:
        return alphas_out, colors_out
    violation = np.linalg.norm(np.einsum("pk,pkc->pc", alphas, colors) - c, axis=1)
    info = {"iterations": iterations.reshape(shape), "color_violation": violation.reshape(shape),
            "energy": unmixing_energy(c, models, alphas, colors, sigma).reshape(shape)}
    return alphas_out, colors_out, info
