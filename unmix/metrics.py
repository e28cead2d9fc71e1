"""Quality metrics for mattes and soft layers.

Matting metrics
---------------
:func:`sad`, :func:`mse`, :func:`gradient_error` and
:func:`connectivity_error` compute the four standard matting errors exactly
as the Deep Image Matting (DIM) evaluation code does (Ning Xu's MATLAB
``evaluate.m`` and ``compute_*_loss.m``, after Rhemann et al., CVPR 2009;
``spec/matting.md`` §4), the numbers matting papers report:

- evaluated on the trimap's unknown region only: pixels where the uint8
  trimap is exactly 128;
- on 8-bit mattes: float mattes are quantised to round(clip(α, 0, 1)·255)
  first, as the reference reads PNG files (``quantize=False`` evaluates the
  floats directly; the numbers then differ slightly from the reference's);
- with the reference's scales: SAD, Gradient and Connectivity are divided by
  1000, MSE is a plain mean (papers often print it ×10³: say which).

Computed in float64; the reference's single-precision sums agree to about
1e-5 relative. :func:`matting_errors` returns all four at once.

Soft colour segmentation metrics
--------------------------------
Blind scores of any :class:`~unmix.Layers` with colours (``spec/color.md``
§8), defined in :mod:`unmix.color.metrics`: :func:`reconstruction_mse`,
:func:`alpha_sum_error`, :func:`box_violation`, :func:`sparsity`,
:func:`color_variance`, :func:`alpha_tv`, and :func:`soft_color_metrics`
for all of them at once.
"""

import math

import numpy as np

#: Soft-colour metrics, re-exported from :mod:`unmix.color.metrics` on first use:
#: importing them eagerly would load the whole colour package (and Numba) with
#: the matting metrics.
_COLOR_METRICS = ("alpha_sum_error", "alpha_tv", "box_violation", "color_variance",
                  "reconstruction_mse", "soft_color_metrics", "sparsity")

__all__ = sorted(["connectivity_error", "gradient_error", "matting_errors", "mse", "sad",
                  *_COLOR_METRICS])

# ----------------------------------------------------------------------------- matting

#: uint8 value of the unknown region in a DIM trimap.
_UNKNOWN = 128
#: Gaussian-derivative scale σ and truncation ε of ``gaussgradient.m``.
_GRADIENT_SIGMA = 1.4
_GRADIENT_EPSILON = 1e-2
#: Connectivity: threshold step and the φ cut-off θ of ``compute_connectivity_error.m``.
_CONNECTIVITY_STEPS = 10
_CONNECTIVITY_THETA = 0.15


def _matte(alpha, name, shape, quantize):
    """A matte as float64 in [0, 1], and as its uint8 codes (None when not quantised)."""
    arr = np.asarray(alpha)
    if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        arr = arr[:, :, 0]  # the reference keeps the first channel of an RGB file
    if arr.ndim != 2 or (shape is not None and arr.shape != shape):
        expected = "(H, W)" if shape is None else f"{shape} (the other inputs')"
        raise ValueError(f"{name} must have shape {expected}, got shape {np.shape(alpha)}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr / 255.0, arr
    if not (np.issubdtype(arr.dtype, np.floating) or arr.dtype == bool):
        raise TypeError(f"{name} must be uint8 (0..255) or floats in [0, 1], got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if not quantize:
        return arr, None
    # Cast to a wide integer type before any subtraction: uint8 arithmetic
    # wraps around (the pitfall of several ports, spec §4.4).
    codes = np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)
    return codes / 255.0, codes


def _region(trimap, shape):
    """The evaluated pixels: trimap == 128 (uint8), or a boolean mask, or everything."""
    if trimap is None:
        return np.ones(shape, dtype=bool)
    arr = np.asarray(trimap)
    if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        arr = arr[:, :, 0]
    if arr.shape != shape:
        raise ValueError(f"trimap must have shape {shape} (the mattes'), got {np.shape(trimap)}")
    if arr.dtype == bool:
        return arr
    if arr.dtype == np.uint8:
        return arr == _UNKNOWN
    if np.issubdtype(arr.dtype, np.floating):
        # A float trimap in [0, 1]: its 8-bit code must be exactly 128.
        return np.rint(np.clip(arr, 0.0, 1.0) * 255.0) == _UNKNOWN
    raise TypeError(f"trimap must be uint8 (unknown = 128), floats in [0, 1] or a boolean mask, "
                    f"got dtype {arr.dtype}")


def _inputs(pred, target, trimap, quantize):
    pred_f, pred_q = _matte(pred, "pred", None, quantize)
    target_f, target_q = _matte(target, "target", pred_f.shape, quantize)
    return pred_f, pred_q, target_f, target_q, _region(trimap, pred_f.shape)


def sad(pred, target, trimap=None, *, quantize=True):
    """Sum of absolute differences on the unknown region, / 1000 (DIM ``compute_sad_loss``).

    Parameters
    ----------
    pred, target : array_like, shape (H, W)
        Predicted and ground-truth mattes: ``uint8`` or floats in [0, 1]
        (an (H, W, C) image uses its first channel, as the reference).
    trimap : array_like, shape (H, W), optional
        ``uint8`` trimap (evaluated where it is exactly 128), a float trimap
        in [0, 1] (where its 8-bit code is 128), or a boolean mask of the
        evaluated pixels. The whole image if omitted.
    quantize : bool, optional
        Round float mattes to 8 bits first, as the reference reads PNG files
        (default True).

    Returns
    -------
    float
        (1/1000) Σ_{i∈U} |α_i − α*_i|.

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.metrics import sad
    >>> gt = np.full((4, 4), 255, np.uint8); pred = gt.copy(); pred[1, 1] = 0
    >>> sad(pred, gt, np.full((4, 4), 128, np.uint8))
    0.001
    """
    p, _, t, _, region = _inputs(pred, target, trimap, quantize)
    return float(np.abs(p[region] - t[region]).sum() / 1000.0)


def mse(pred, target, trimap=None, *, quantize=True):
    """Mean squared error on the unknown region (DIM ``compute_mse_loss``; no scale).

    Parameters are those of :func:`sad`.

    Returns
    -------
    float
        (1/|U|) Σ_{i∈U} (α_i − α*_i)²; 0 if the region is empty.
    """
    p, _, t, _, region = _inputs(pred, target, trimap, quantize)
    count = np.count_nonzero(region)
    return float(((p[region] - t[region]) ** 2).sum() / count) if count else 0.0


def _gaussian_derivative_kernels(sigma=_GRADIENT_SIGMA, epsilon=_GRADIENT_EPSILON):
    """The two 1-D factors of ``gaussgradient.m``'s L2-normalised x-kernel.

    h_x(i, j) = G(u_i) G′(u_j) on u ∈ {−s..s}, s = ⌈σ √(−2 ln(√(2π) σ ε))⌉
    (4 for σ = 1.4), G′(u) = −u G(u)/σ², divided by its Frobenius norm; it is
    the outer product of ``smooth`` (along y) and ``derivative`` (along x),
    each normalised to unit L2 norm. h_y = h_xᵀ.
    """
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * epsilon)))
    u = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-u * u / (2.0 * sigma * sigma)) / (sigma * math.sqrt(2.0 * math.pi))
    derivative = -u * gauss / (sigma * sigma)
    return gauss / np.linalg.norm(gauss), derivative / np.linalg.norm(derivative)


def _gradient_magnitude(alpha):
    """‖∇_σ α̂‖ with α̂ = mat2gray(α): per-image min–max rescale, then the
    Gaussian-derivative filters as true convolutions with replicate borders
    (MATLAB ``imfilter(..., 'replicate', 'conv')``), separably."""
    from scipy.ndimage import convolve1d

    low, high = alpha.min(), alpha.max()
    if high == low:  # a constant matte has no gradient, whatever mat2gray returns
        return np.zeros_like(alpha)
    scaled = (alpha - low) / (high - low)
    smooth, derivative = _gaussian_derivative_kernels()
    # convolve1d is a true convolution (the kernel is flipped), as 'conv'.
    gx = convolve1d(convolve1d(scaled, smooth, axis=0, mode="nearest"), derivative, axis=1,
                    mode="nearest")
    gy = convolve1d(convolve1d(scaled, smooth, axis=1, mode="nearest"), derivative, axis=0,
                    mode="nearest")
    return np.hypot(gx, gy)


def gradient_error(pred, target, trimap=None, *, quantize=True):
    """Gradient error on the unknown region, / 1000 (DIM ``compute_gradient_loss``).

    Each matte is min–max rescaled over the whole image (MATLAB
    ``mat2gray``: a prediction that does not span [0, 1] is stretched), its
    gradient magnitude taken with normalised first-order Gaussian-derivative
    filters (σ = 1.4, 9×9, replicate borders), and the squared differences of
    the magnitudes are summed over the region.

    Parameters are those of :func:`sad`.

    Returns
    -------
    float
        (1/1000) Σ_{i∈U} (‖∇_σ α̂_i‖ − ‖∇_σ α̂*_i‖)².
    """
    p, _, t, _, region = _inputs(pred, target, trimap, quantize)
    difference = _gradient_magnitude(p) - _gradient_magnitude(t)
    return float((difference[region] ** 2).sum() / 1000.0)


def _largest_component(mask):
    """The largest 4-connected component of ``mask`` (empty if ``mask`` is).

    Ties go to the component met first in column-major order, as MATLAB's
    ``bwconncomp`` + ``max`` pick it.
    """
    from scipy.ndimage import label

    labels, count = label(mask)  # the default structure is 4-connectivity
    if count == 0:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    best = np.flatnonzero(sizes == sizes.max()) + 1
    if best.size > 1:
        order = labels.T.ravel()  # column-major scan: the first tied component met
        best = order[np.isin(order, best)][:1]
    return labels == int(best[0])


def _connectivity_levels(pred_above, target_above):
    """l: the threshold below which each pixel leaves the largest component of
    {pred ≥ t} ∩ {target ≥ t}, over t = 0.1, 0.2, ..., 1 (1 if it never does).

    ``pred_above(k)`` and ``target_above(k)`` are the masks α ≥ k/10.
    """
    levels = None
    for k in range(1, _CONNECTIVITY_STEPS + 1):
        both = pred_above(k) & target_above(k)
        if levels is None:
            levels = np.full(both.shape, -1.0)
        connected = _largest_component(both)
        levels[(levels == -1.0) & ~connected] = (k - 1) / _CONNECTIVITY_STEPS
    levels[levels == -1.0] = 1.0
    return levels


def connectivity_error(pred, target, trimap=None, *, quantize=True):
    """Connectivity error on the unknown region, / 1000 (DIM ``compute_connectivity_error``).

    For thresholds t_k = 0.1, 0.2, ..., 1 the largest 4-connected component
    Ω_k of {α ≥ t_k} ∩ {α* ≥ t_k} is found; each pixel's level l is the
    threshold t_{k−1} of the first Ω_k it is not in (1 if none). Then
    φ(α) = 1 − d·[d ≥ 0.15] with d = α − l, and the error is
    (1/1000) Σ_{i∈U} |φ(α_i) − φ(α*_i)|.

    Parameters are those of :func:`sad`.

    Notes
    -----
    On 8-bit mattes the threshold tests are done in integers, v ≥ ⌈25.5 k⌉,
    which is what MATLAB's single-precision α ≥ double t computes; a float64
    port with ``np.arange(0, 1.05, 0.1)`` thresholds puts 153/255 = 0.6
    below its t = 0.6000000000000001 (spec §4.2). When a thresholded
    intersection is empty, Ω_k is empty and every pixel still unassigned
    gets l = t_{k−1} (the reference's behaviour there is undefined).
    """
    p, p_codes, t, t_codes, region = _inputs(pred, target, trimap, quantize)
    steps = _CONNECTIVITY_STEPS
    if p_codes is not None and t_codes is not None:
        # v/255 ≥ k/10  ⇔  10 v ≥ 255 k: exact in integers (int32, no wrap-around).
        p_int, t_int = p_codes.astype(np.int32), t_codes.astype(np.int32)
        levels = _connectivity_levels(lambda k: steps * p_int >= 255 * k,
                                      lambda k: steps * t_int >= 255 * k)
    else:
        levels = _connectivity_levels(lambda k: p >= k / steps, lambda k: t >= k / steps)

    def phi(alpha):
        d = alpha - levels
        return 1.0 - d * (d >= _CONNECTIVITY_THETA)

    return float(np.abs(phi(p) - phi(t))[region].sum() / 1000.0)


def matting_errors(pred, target, trimap=None, *, quantize=True):
    """All four DIM matting errors: ``{"sad", "mse", "gradient", "connectivity"}``.

    Parameters are those of :func:`sad`.
    """
    return {
        "sad": sad(pred, target, trimap, quantize=quantize),
        "mse": mse(pred, target, trimap, quantize=quantize),
        "gradient": gradient_error(pred, target, trimap, quantize=quantize),
        "connectivity": connectivity_error(pred, target, trimap, quantize=quantize),
    }


def __getattr__(name):
    if name in _COLOR_METRICS:
        from .color import metrics

        return getattr(metrics, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_COLOR_METRICS))
