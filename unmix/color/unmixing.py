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
  spectral projected gradient from the same initialisation. The colours
  are then brought into the box (§5.3) without breaking the colour
  constraint (see :func:`closed_form_colors`).

Both start from the paper's initialisation (§4.1): the model nearest to c
takes the whole pixel.
"""

import math
import warnings

import numpy as np
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
    arr = np.asarray(colors, dtype=np.float64)
    if arr.ndim < 1 or arr.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., 3) (RGB colours), got {arr.shape}")
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"{name} must be finite colours in [0, 1]")
    return np.ascontiguousarray(arr.reshape(-1, 3))


def _alphas(alphas, n, k, name="alphas"):
    arr = np.asarray(alphas, dtype=np.float64)
    if arr.size != n * k or arr.shape[-1] != k:
        raise ValueError(f"{name} must have shape (..., {k}) with one row per pixel, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return np.ascontiguousarray(arr.reshape(n, k))


# ----------------------------------------------------------------------------- kernels


@njit(cache=True)
def _solve_spd3(m00, m01, m02, m11, m12, m22, r0, r1, r2):
    """Solve the symmetric positive definite 3×3 system M v = r by Cholesky."""
    l00 = math.sqrt(m00)
    l10 = m01 / l00
    l20 = m02 / l00
    l11 = math.sqrt(m11 - l10 * l10)
    l21 = (m12 - l20 * l10) / l11
    l22 = math.sqrt(m22 - l20 * l20 - l21 * l21)
    z0 = r0 / l00
    z1 = (r1 - l10 * z0) / l11
    z2 = (r2 - l20 * z0 - l21 * z1) / l22
    v2 = z2 / l22
    v1 = (z1 - l21 * v2) / l11
    v0 = (z0 - l10 * v1 - l20 * v2) / l00
    return v0, v1, v2


@njit(cache=True)
def _multiplier(a, c, means, covs):
    """v = M(α)⁻¹ r(α) of §5.1 (the colour constraint's multiplier, up to a factor)."""
    m00 = m01 = m02 = m11 = m12 = m22 = 0.0
    r0, r1, r2 = c[0], c[1], c[2]
    for k in range(a.shape[0]):
        ak = a[k]
        if ak == 0.0:
            continue
        s = covs[k]
        m00 += ak * s[0, 0]
        m01 += ak * s[0, 1]
        m02 += ak * s[0, 2]
        m11 += ak * s[1, 1]
        m12 += ak * s[1, 2]
        m22 += ak * s[2, 2]
        r0 -= ak * means[k, 0]
        r1 -= ak * means[k, 1]
        r2 -= ak * means[k, 2]
    v0, v1, v2 = _solve_spd3(m00, m01, m02, m11, m12, m22, r0, r1, r2)
    return v0, v1, v2, r0 * v0 + r1 * v1 + r2 * v2


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
        v0, v1, v2, value = _multiplier(x, c, means, covs)
        for k in range(n_layers):
            s = covs[k]
            # ∂(rᵀM⁻¹r)/∂α_k = −2 μ_kᵀ v − vᵀ Σ_k v   (∂r/∂α_k = −μ_k, ∂M/∂α_k = Σ_k)
            grad[k] = (-2.0 * (means[k, 0] * v0 + means[k, 1] * v1 + means[k, 2] * v2)
                       - (v0 * (s[0, 0] * v0 + s[0, 1] * v1 + s[0, 2] * v2)
                          + v1 * (s[1, 0] * v0 + s[1, 1] * v1 + s[1, 2] * v2)
                          + v2 * (s[2, 0] * v0 + s[2, 1] * v1 + s[2, 2] * v2)))
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
def _spg(kind, x, data, tol, max_iter, work):
    """Spectral projected gradient (Birgin, Martínez, Raydan 2000), monotone Armijo search.

    Minimises ``_objective(kind, ·)`` over the simplex or the box from ``x``
    (in place) until the projected gradient ‖P(x − ∇f) − x‖∞ ≤ ``tol``.
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
        for i in range(n):
            stationarity = max(stationarity, abs(d[i] - x[i]))
        if stationarity <= tol:
            return it, stationarity
        for i in range(n):
            xn[i] = x[i] - step * g[i]
        _project(kind, xn, d, n_layers, scratch)
        slope = 0.0
        for i in range(n):
            d[i] -= x[i]
            slope += g[i] * d[i]
        if slope >= 0.0:
            return it, stationarity
        t = 1.0
        accepted = False
        for _ in range(50):
            for i in range(n):
                xn[i] = x[i] + t * d[i]
            fn = _objective(kind, xn, gn, data)
            if fn <= f + 1e-4 * t * slope:
                accepted = True
                break
            t *= 0.5
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
        for p in range(chunk * _CHUNK, min((chunk + 1) * _CHUNK, n_pixels)):
            data = (pixels[p], means, covs, no_precisions, sigma, unused, 0.0, False, unused)
            iterations[p], stationarity[p] = _spg(_REDUCED, alphas[p], data, tol, max_iter, work)


@njit(cache=True, parallel=True)
def _mom_batch(pixels, x, means, precisions, frozen, sigma, lam0, rho0, beta, kappa, tol,
               max_outer, inner_tol, max_inner, outer_iterations, violations):
    """Method of multipliers per pixel (spec §4.2), x = (α, u) in place."""
    n_pixels, n = x.shape
    n_layers = means.shape[0]
    no_covs = np.empty((0, 3, 3))  # the reduced problem's slot of the objective's data
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
                _spg(_LAGRANGIAN, x[p], data, inner_tol, max_inner, work)
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
        v0, v1, v2, _ = _multiplier(a, pixels[p], means, covs)
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
    """
    models = _check_models(models)
    shape = np.shape(pixels)[:-1]
    alphas = np.asarray(alphas, dtype=np.float64)
    diff = np.asarray(colors, dtype=np.float64) - models.means
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
    """
    models = _check_models(models)
    shape = np.shape(pixels)[:-1]
    c = _pixels(pixels)
    nearest = np.argmin(models.squared_distances(c), axis=1)
    alphas = np.zeros((c.shape[0], models.n_models))
    alphas[np.arange(c.shape[0]), nearest] = 1.0
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
    """
    models = _check_models(models)
    shape = np.shape(pixels)[:-1]
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
    """
    models = _check_models(models)
    if method not in ("fast", "mom"):
        raise ValueError(f"method must be 'fast' or 'mom', got {method!r}")
    if not (isinstance(sigma, (int, float)) and sigma >= 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    shape = np.shape(pixels)[:-1]
    c = _pixels(pixels)
    n, k = c.shape[0], models.n_models
    alphas, colors = initial_solution(c, models)
    np.clip(colors, 0.0, 1.0, out=colors)
    with threads_for(n):
        if method == "fast":
            if target_alphas is not None or initial_colors is not None:
                raise ValueError("target_alphas and initial_colors apply to method='mom' only; "
                                 "the fast refinement is closed_form_colors")
            max_iter = 500 if max_iter is None else max_iter
            iterations = np.zeros(n, dtype=np.int64)
            stationarity = np.zeros(n)
            _reduced_batch(c, alphas, models.means, models.covariances, float(sigma), tol,
                           max_iter, iterations, stationarity)
            colors = closed_form_colors(c, models, alphas)
            unconverged = int(np.count_nonzero(iterations >= max_iter))
        else:
            max_iter = 100 if max_iter is None else max_iter
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
