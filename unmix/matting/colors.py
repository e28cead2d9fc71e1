"""Layer colours: the colour of each soft layer, given the image and the alphas.

Alpha alone does not make compositable layers: a pixel of hair against a sky
is a mix, and moving the hair onto a new background needs the hair's own
colour. With K layers of alphas α_k (Σ_k α_k = 1) the colours u_k minimise
(``spec/matting.md`` §2.3, option 3)

.. math::

    \\sum_p \\Big\\| \\sum_k \\alpha_{kp} u_{kp} - c_p \\Big\\|^2
    + \\sum_k \\sum_{p \\sim q} (\\varepsilon + g\\,|\\alpha_{kp} - \\alpha_{kq}|)
      \\, \\| u_{kp} - u_{kq} \\|^2 ,

the layers reproduce the image, and each layer's colour is smooth, most of
all where its alpha changes (the edges a layer's colour must not leak
across) and where its alpha is small (the data term barely constrains it
there). For K = 2 with α = (α, 1 − α) this is the foreground/background
problem of Germer et al.'s multi-level estimator (pymatting's
``estimate_foreground_ml``, §2.2), and the iteration below reduces to theirs.

Solver (coarse-to-fine Gauss–Seidel, §2.2): the image and alphas are resized
by nearest neighbour to ⌈log₂ max(H, W)⌉ + 1 levels whose sides grow
geometrically from 1×1; at each level every pixel in raster order solves its
own problem with its four neighbours' colours fixed (10 sweeps on levels up
to 32×32, 2 above), starting from the previous level's colours. The per-pixel
system is diag(d) + a aᵀ (d_k the neighbour weights of layer k, a the
alphas), solved for each channel in O(K) by the Sherman–Morrison formula;
each colour is then clipped to [0, 1].
"""

import logging

import numpy as np
from numba import njit

from .._checks import as_array, integer, positive, real, real_array

__all__ = ["estimate_foreground", "estimate_layer_colors"]

log = logging.getLogger("unmix")

# The four neighbours (left, right, up, down): the reference's order.
_DY = (0, 0, -1, 1)
_DX = (-1, 1, 0, 0)


@njit(cache=True)
def _resize_nearest(src, h, w):
    """Nearest-neighbour resize of an (H, W, C) array: source = target · size // new size."""
    hs, ws, c = src.shape
    out = np.empty((h, w, c))
    for y in range(h):
        ys = min(y * hs // h, hs - 1)
        for x in range(w):
            xs = min(x * ws // w, ws - 1)
            for k in range(c):
                out[y, x, k] = src[ys, xs, k]
    return out


@njit(cache=True)
def _sweeps(image, alphas, colors, n_sweeps, regularization, gradient_weight):
    """Gauss–Seidel sweeps, in place, over ``colors`` (h, w, K, 3)."""
    h, w, n_layers = alphas.shape
    d = np.empty(n_layers)
    r = np.empty((n_layers, 3))
    for _ in range(n_sweeps):
        for y in range(h):
            for x in range(w):
                for k in range(n_layers):
                    d[k] = 0.0
                    for c in range(3):
                        r[k, c] = alphas[y, x, k] * image[y, x, c]
                # The four neighbours, clamped at the border (a border pixel
                # is then its own neighbour, with weight ε).
                for nb in range(4):
                    y2 = min(max(y + _DY[nb], 0), h - 1)
                    x2 = min(max(x + _DX[nb], 0), w - 1)
                    for k in range(n_layers):
                        wk = regularization + gradient_weight * abs(
                            alphas[y, x, k] - alphas[y2, x2, k])
                        d[k] += wk
                        for c in range(3):
                            r[k, c] += wk * colors[y2, x2, k, c]
                # (diag(d) + a aᵀ)⁻¹ r = D⁻¹r − D⁻¹a (aᵀD⁻¹r) / (1 + aᵀD⁻¹a).
                s = 0.0
                for k in range(n_layers):
                    s += alphas[y, x, k] * alphas[y, x, k] / d[k]
                for c in range(3):
                    t = 0.0
                    for k in range(n_layers):
                        t += alphas[y, x, k] * r[k, c] / d[k]
                    t /= 1.0 + s
                    for k in range(n_layers):
                        u = (r[k, c] - alphas[y, x, k] * t) / d[k]
                        colors[y, x, k, c] = min(max(u, 0.0), 1.0)


def _normalized_alphas(alphas, shape):
    """Alphas as float64 (H, W, K), clipped to [0, 1] and summing to one."""
    alphas = as_array(getattr(alphas, "alphas", alphas), "alphas")
    if alphas.ndim != 3 or alphas.shape[:2] != shape or alphas.shape[2] < 1:
        raise ValueError(f"alphas must have shape (H, W, K) with (H, W) = {shape} (the "
                         f"image's) and K >= 1 layers, got shape {alphas.shape}")
    if alphas.dtype == np.uint8:
        alphas = alphas / 255.0
    alphas = real_array(alphas, "alphas")
    # Soft segments are not clamped (SSS leaves them in about [-0.2, 1.2]):
    # the model needs weights in [0, 1] that sum to one.
    clipped = np.clip(alphas, 0.0, 1.0)
    total = clipped.sum(axis=2, keepdims=True)
    normalized = np.divide(clipped, total, out=np.full_like(clipped, 1.0 / alphas.shape[2]),
                           where=total > 0)
    change = float(np.abs(normalized - alphas).max())
    if change > 1e-6:
        log.info("layer colours: alphas clipped to [0, 1] and renormalised to sum to one "
                 "(largest change %.3g)", change)
    return np.ascontiguousarray(normalized)


def _initial_colors(image, alphas):
    """The 1×1 starting colours: each layer's mean colour where α_k > 0.9 (where it
    is nearly alone), or its α-weighted mean colour if it is nowhere that opaque."""
    colors = np.empty((1, 1, alphas.shape[2], 3))
    for k in range(alphas.shape[2]):
        solid = alphas[:, :, k] > 0.9
        if solid.any():
            colors[0, 0, k] = image[solid].mean(axis=0)
        else:
            weight = alphas[:, :, k]
            colors[0, 0, k] = (weight[:, :, None] * image).sum(axis=(0, 1)) / max(weight.sum(), 1e-12)
    return colors


def estimate_layer_colors(image, alphas, *, regularization=1e-5, gradient_weight=1.0,
                          small_size=32, n_small_iterations=10, n_big_iterations=2):
    """Colours of K soft layers that reproduce the image (multi-level estimation).

    Parameters
    ----------
    image : array_like, shape (H, W, 3) or (H, W)
        The image (see :func:`unmix.image.as_float_image`).
    alphas : Layers or array_like, shape (H, W, K)
        The layers' alphas. They are clipped to [0, 1] and renormalised to
        sum to one first (logged when that changes them), so soft segments
        can be passed as they are; ``uint8`` alphas are divided by 255. A
        single layer (K = 1) has the image's colours.
    regularization : float, optional
        ε, the smoothness weight everywhere (default 1e-5).
    gradient_weight : float, optional
        g, the extra smoothness weight per unit of alpha change between
        neighbours (default 1).
    small_size : int, optional
        Levels whose sides are both at most this get ``n_small_iterations``
        sweeps, the others ``n_big_iterations`` (defaults 32, 10 and 2).
    n_small_iterations, n_big_iterations : int, optional

    Returns
    -------
    colors : ndarray, shape (H, W, K, 3), float64 in [0, 1]
        ``colors[..., k, :]`` is layer k's colour; Σ_k α_k u_k reproduces the
        image up to the smoothness term (and exactly where one α is 1).

    See Also
    --------
    estimate_foreground : The two-layer case, for one matte.
    unmix.layers.composite : Composite layers onto a new background.

    Notes
    -----
    The defaults are pymatting's ``estimate_foreground_ml``; for K = 2 the
    result equals it up to its float32 rounding. Numba compiles the kernels
    on the first call (cached on disk afterwards).

    Examples
    --------
    Colours for three soft layers of a photograph, which recompose it up to
    the smoothness term:

    >>> import numpy as np
    >>> from unmix import estimate_layer_colors
    >>> from unmix.image import example_image
    >>> image = example_image("coffee", (24, 32))
    >>> x = np.linspace(0.0, 1.0, 32)
    >>> ramp = np.tile(np.stack([(1 - x) ** 2, 2 * x * (1 - x), x ** 2], axis=1), (24, 1, 1))
    >>> colors = estimate_layer_colors(image, ramp)
    >>> colors.shape
    (24, 32, 3, 3)
    >>> error = np.abs((ramp[..., None] * colors).sum(axis=2) - image)
    >>> bool(error.mean() < 0.01)
    True
    """
    from ..image import as_float_image

    image = as_float_image(image, name="image", min_side=1)
    alphas = _normalized_alphas(alphas, image.shape[:2])
    regularization = positive("regularization", regularization)
    gradient_weight = real("gradient_weight", gradient_weight, 0.0)
    small_size, n_small_iterations, n_big_iterations = (
        integer(name, value, 0) for name, value in (
            ("small_size", small_size), ("n_small_iterations", n_small_iterations),
            ("n_big_iterations", n_big_iterations)))
    if alphas.shape[2] == 1:  # one layer of alpha 1 has the image's colours
        return image[:, :, None, :].copy()

    height, width = image.shape[:2]
    n_levels = int(np.ceil(np.log2(max(height, width))))
    colors = _initial_colors(image, alphas)
    for level in range(n_levels + 1):
        # Sides grow geometrically from 1 to the image's; Python's round, as
        # the reference (round half to even).
        h = round(height ** (level / n_levels)) if n_levels else height
        w = round(width ** (level / n_levels)) if n_levels else width
        level_image = _resize_nearest(image, h, w)
        level_alphas = _resize_nearest(alphas, h, w)
        colors = _resize_nearest(colors.reshape(colors.shape[0], colors.shape[1], -1), h, w)
        colors = colors.reshape(h, w, -1, 3)
        sweeps = n_small_iterations if (h <= small_size and w <= small_size) else n_big_iterations
        _sweeps(level_image, level_alphas, colors, int(sweeps), regularization,
                float(gradient_weight))
    return colors


def estimate_foreground(image, alpha, *, return_background=False, **kwargs):
    """Foreground (and background) colours for one alpha matte.

    The two-layer case of :func:`estimate_layer_colors`, with layers α and
    1 − α: Germer et al.'s multi-level foreground estimation.

    Parameters
    ----------
    image : array_like, shape (H, W, 3) or (H, W)
    alpha : array_like, shape (H, W)
        Floats in [0, 1], or ``uint8`` (divided by 255).
    return_background : bool, optional
        Also return the background colours.
    **kwargs
        Passed on to :func:`estimate_layer_colors`.

    Returns
    -------
    foreground : ndarray, shape (H, W, 3)
    background : ndarray, shape (H, W, 3)
        Only with ``return_background=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.matting import estimate_foreground
    >>> fg, bg = np.array([0.9, 0.2, 0.1]), np.array([0.1, 0.3, 0.8])
    >>> alpha = np.tile(np.linspace(0, 1, 16), (8, 1))
    >>> image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    >>> F = estimate_foreground(image, alpha)
    >>> bool(np.abs(F[:, 1:] - fg).max() < 0.01)
    True
    """
    alpha = as_array(alpha, "alpha")
    if alpha.ndim != 2:
        raise ValueError(f"alpha must have shape (H, W), got shape {alpha.shape}")
    alpha = real_array(alpha / 255.0 if alpha.dtype == np.uint8 else alpha, "alpha")
    colors = estimate_layer_colors(image, np.stack([alpha, 1.0 - alpha], axis=2), **kwargs)
    foreground, background = colors[:, :, 0], colors[:, :, 1]
    return (foreground, background) if return_background else foreground
