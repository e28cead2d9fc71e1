"""Local image filters shared by the methods: box and guided filters, image gradient.

All filters compute in float64 and use replicate ("nearest") borders. Windows
are given by their side length; an even side follows MATLAB's anchor
(``floor((size + 1) / 2)``, 1-based), so a 10-pixel window covers offsets
-4 … +5, as the released SSS code's ``imguidedfilter`` does (spec ``sss.md``
§3.2). An odd side ``2r + 1`` is the centred window of radius r.
"""

import numpy as np
from numba import njit, prange
from scipy.ndimage import convolve1d, uniform_filter1d

from ._checks import integer, positive, real_array

__all__ = ["box_filter", "guided_filter", "image_gradient"]


#: The largest box side accepted (far beyond any image side the library handles).
_MAX_WINDOW = 2**16


def _check_window(window):
    # SciPy's running mean buffers a line plus the window: a window of 1e9 pixels
    # would allocate gigabytes to filter any image.
    return integer("window (the box side)", window, 1, _MAX_WINDOW)


def box_filter(image, window):
    """Mean over a ``window × window`` box around each pixel, replicate borders.

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, C)
    window : int
        Side of the box. Odd sides are centred; even sides cover offsets
        ``-(window // 2 - 1) … window // 2`` (MATLAB's ``imboxfilt`` anchor).

    Returns
    -------
    out : ndarray, float64, same shape as ``image``

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.filters import box_filter
    >>> box_filter(np.arange(9.0).reshape(3, 3), 3)
    array([[1.33333333, 2.        , 2.66666667],
           [3.33333333, 4.        , 4.66666667],
           [5.33333333, 6.        , 6.66666667]])
    """
    window = _check_window(window)
    image = real_array(image, "image", (2, 3))
    return _box(image, window)


def _box(x, window):
    # SciPy centres an even window at offsets -w/2 … w/2 - 1; origin=-1 moves
    # it to MATLAB's -(w/2 - 1) … w/2.
    origin = -1 if window % 2 == 0 else 0
    out = uniform_filter1d(x, window, axis=0, mode="nearest", origin=origin)
    return uniform_filter1d(out, window, axis=1, mode="nearest", origin=origin)


def guided_filter(src, guide, window, eps):
    """Guided filter of He, Sun and Tang (TPAMI 2013), float64.

    Parameters
    ----------
    src : array_like, shape (H, W) or (H, W, C)
        The image to filter; each channel is filtered independently.
    guide : array_like, shape (H, W) or (H, W, 3)
        The guide. A grey guide gives the grey guided filter (Eqs. 7–8 of
        He et al.); a colour guide gives the colour-covariance filter
        (Eqs. 19–21), a 3×3 solve per pixel.
    window : int
        Side of the box window: ``2 r + 1`` for radius r (even sides follow
        MATLAB's anchor, see :func:`box_filter`).
    eps : float
        Regularisation ε > 0 added to the (co)variance of the guide.

    Returns
    -------
    out : ndarray, float64, same shape as ``src``

    Notes
    -----
    Grey guide g, input p, with box means ⟨·⟩:
    ``a = (⟨g p⟩ - ⟨g⟩⟨p⟩) / (⟨g²⟩ - ⟨g⟩² + ε)``, ``b = ⟨p⟩ - a ⟨g⟩`` and
    ``q = ⟨a⟩ g + ⟨b⟩``. Colour guide I: ``a = (Σ + ε I₃)⁻¹ cov(I, p)``,
    ``b = ⟨p⟩ - aᵀ⟨I⟩`` and ``q = ⟨a⟩ᵀ I + ⟨b⟩``.

    Examples
    --------
    Smooth a noisy copy of an image while keeping the edges of the image itself:

    >>> import numpy as np
    >>> from unmix.filters import guided_filter
    >>> from unmix.image import example_image
    >>> image = example_image("coffee", (48, 64))
    >>> noisy = image[..., 0] + np.random.default_rng(0).normal(0, 0.1, (48, 64))
    >>> smooth = guided_filter(noisy, image, window=5, eps=1e-3)
    >>> smooth.shape
    (48, 64)
    >>> bool(np.abs(smooth - image[..., 0]).mean() < np.abs(noisy - image[..., 0]).mean())
    True
    """
    window = _check_window(window)
    src = real_array(src, "src", (2, 3))
    guide = real_array(guide, "guide", (2, 3))
    eps = positive("eps", eps)
    if guide.ndim == 3 and guide.shape[2] == 1:
        guide = guide[:, :, 0]
    if guide.ndim == 3 and guide.shape[2] != 3:
        raise ValueError(f"guide must be grey (H, W) or colour (H, W, 3), got shape {guide.shape}")
    if src.shape[:2] != guide.shape[:2]:
        raise ValueError(
            f"src and guide must have the same height and width, got {src.shape} and {guide.shape}"
        )
    channels = src if src.ndim == 3 else src[:, :, None]
    if guide.ndim == 2:
        out = _guided_grey(channels, guide, window, eps)
    else:
        out = _guided_colour(channels, guide, window, eps)
    return out if src.ndim == 3 else out[:, :, 0]


def _guided_grey(p, g, window, eps):
    g3 = g[:, :, None]
    mean_g = _box(g3, window)
    var_g = _box(g3 * g3, window) - mean_g * mean_g
    mean_p = _box(p, window)
    cov = _box(g3 * p, window) - mean_g * mean_p
    a = cov / (var_g + eps)
    b = mean_p - a * mean_g
    return _box(a, window) * g3 + _box(b, window)


def _guided_colour(p, guide, window, eps):
    mean_i = _box(guide, window)
    # The six distinct entries of the per-pixel guide covariance Σ.
    pairs = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    products = np.stack([guide[:, :, c] * guide[:, :, d] for c, d in pairs], axis=2)
    sigma = _box(products, window) - np.stack(
        [mean_i[:, :, c] * mean_i[:, :, d] for c, d in pairs], axis=2
    )
    out = np.empty_like(p)
    for c in range(p.shape[2]):
        pc = p[:, :, c : c + 1]
        mean_p = _box(pc, window)
        cov = _box(guide * pc, window) - mean_i * mean_p
        a = _solve_spd3(sigma, cov, eps)
        b = mean_p[:, :, 0] - np.einsum("yxc,yxc->yx", a, mean_i)
        out[:, :, c] = np.einsum("yxc,yxc->yx", _box(a, window), guide) + _box(b, window)
    return out


@njit(cache=True, parallel=True)
def _solve_spd3(sigma, rhs, eps):
    """Per pixel, solve (Σ + ε I₃) a = rhs by Cholesky (Σ given by 6 entries)."""
    height, width = rhs.shape[0], rhs.shape[1]
    out = np.empty_like(rhs)
    for y in prange(height):
        for x in range(width):
            s = sigma[y, x]
            # Cholesky factor of the symmetric positive definite Σ + εI.
            l00 = np.sqrt(s[0] + eps)
            l10 = s[1] / l00
            l20 = s[2] / l00
            l11 = np.sqrt(s[3] + eps - l10 * l10)
            l21 = (s[4] - l20 * l10) / l11
            l22 = np.sqrt(s[5] + eps - l20 * l20 - l21 * l21)
            r = rhs[y, x]
            z0 = r[0] / l00
            z1 = (r[1] - l10 * z0) / l11
            z2 = (r[2] - l20 * z0 - l21 * z1) / l22
            a2 = z2 / l22
            a1 = (z1 - l21 * a2) / l11
            a0 = (z0 - l10 * a1 - l20 * a2) / l00
            out[y, x, 0] = a0
            out[y, x, 1] = a1
            out[y, x, 2] = a2
    return out


# Farid and Simoncelli's 13-tap derivative (d) and interpolation (k) filters
# ("filtSize 6" in the released SSS code; spec sss.md §12.1).
_FARID_DERIVATIVE = np.array([0.0001, 0.0019, 0.0142, 0.0509, 0.0963, 0.0878, 0.0,
                              -0.0878, -0.0963, -0.0509, -0.0142, -0.0019, -0.0001])
_FARID_INTERPOLATION = np.array([0.0000, 0.0007, 0.0071, 0.0374, 0.1126, 0.2119, 0.2605,
                                 0.2119, 0.1126, 0.0374, 0.0071, 0.0007, 0.0000])


def image_gradient(image):
    """Gradient magnitude ``|∇I|`` with Farid–Simoncelli 13-tap filters.

    Each RGB channel is filtered separably (derivative along one axis,
    interpolation along the other) with replicate borders; the channel
    derivatives are combined as gx = √Σ_c gx_c², gy = √Σ_c gy_c², and
    ``|∇I| = √(gx² + gy²)`` (spec ``sss.md`` §12.1). Semantic soft segmentation
    uses it for the per-pixel sparsity exponent ``γ_p = 0.9 + min(|∇I|_p, 0.1)``
    (paper Eq. 10b).

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, C)
        The image (any number of channels, each filtered alike).

    Returns
    -------
    magnitude : ndarray, shape (H, W), float64

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.filters import image_gradient
    >>> from unmix.image import example_image
    >>> gradient = image_gradient(example_image("coffee", (48, 64)))
    >>> gradient.shape, bool(gradient.min() >= 0)
    ((48, 64), True)
    >>> step = np.zeros((16, 16)); step[:, 8:] = 1.0
    >>> int(np.argmax(image_gradient(step)[8]))  # strongest at the edge
    7
    """
    image = real_array(image, "image", (2, 3))
    channels = image if image.ndim == 3 else image[:, :, None]
    # The derivative's sign is irrelevant to the magnitude, so correlation
    # (convolve1d with the flipped taps) and convolution give the same result.
    gy = convolve1d(convolve1d(channels, _FARID_DERIVATIVE, axis=0, mode="nearest"),
                    _FARID_INTERPOLATION, axis=1, mode="nearest")
    gx = convolve1d(convolve1d(channels, _FARID_INTERPOLATION, axis=0, mode="nearest"),
                    _FARID_DERIVATIVE, axis=1, mode="nearest")
    return np.sqrt(np.sum(gx * gx, axis=2) + np.sum(gy * gy, axis=2))
