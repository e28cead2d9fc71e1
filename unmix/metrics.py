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

Soft segments against a matte
-----------------------------
Soft segmentation has no trimap: an object is selected by picking the
layers whose summed alpha is its matte. :func:`best_layer_union` tries every
non-empty subset of the K ≤ 12 layers, its summed alpha clipped to [0, 1]
(soft layers may stray slightly outside it), against a ground-truth matte,
and returns the best (a :class:`LayerUnion`) with its SAD and MSE over the
image and, given a trimap, in its unknown band, under the conventions above.

Soft colour segmentation metrics
--------------------------------
Blind scores of any :class:`~unmix.Layers` with colours (``spec/color.md``
§8), defined in :mod:`unmix.color.metrics`: :func:`reconstruction_mse`,
:func:`alpha_sum_error`, :func:`box_violation`, :func:`sparsity`,
:func:`color_variance`, :func:`alpha_tv`, and :func:`soft_color_metrics`
for all of them at once.
"""

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from ._checks import as_array, real_array
from ._memory import check_memory, image_pixels

#: Soft-colour metrics, re-exported from :mod:`unmix.color.metrics` on first use:
#: importing them eagerly would load the whole colour package (and Numba) with
#: the matting metrics.
_COLOR_METRICS = ("alpha_sum_error", "alpha_tv", "box_violation", "color_variance",
                  "reconstruction_mse", "soft_color_metrics", "sparsity")

__all__ = sorted(["LayerUnion", "best_layer_union", "connectivity_error", "gradient_error",
                  "matting_errors", "mse", "sad", *_COLOR_METRICS])

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
    arr = as_array(alpha, name)
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
    arr = as_array(trimap, "trimap")
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


#: Peak bytes per pixel of any metric, its inputs' conversions included (traced peaks
#: of 34 (SAD, MSE), 73 (Gradient) and 67 (Connectivity) at 1000×1000, plus margin).
_PEAK_BYTES_PER_PIXEL = 96.0


def _inputs(pred, target, trimap, quantize):
    shape = image_pixels(pred)
    if shape is not None:
        check_memory(_PEAK_BYTES_PER_PIXEL * shape[0] * shape[1],
                     f"a matting metric of {shape[0]}×{shape[1]} mattes",
                     "evaluate a smaller matte, or crops of it, and add the errors up")
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
        ``(1/1000) Σ_{i∈U} |α_i − α*_i|``.

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
        ``(1/|U|) Σ_{i∈U} (α_i − α*_i)²``; 0 if the region is empty.

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.zeros((8, 8), np.uint8); gt[:, 4:] = 255      # a vertical edge
    >>> pred = gt.copy(); pred[3, 3] = 255                    # one pixel wrong
    >>> trimap = np.full((8, 8), 128, np.uint8)               # everything unknown
    >>> from unmix.metrics import mse
    >>> mse(pred, gt, trimap)        # 1 pixel of 64, fully wrong
    0.015625
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

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.zeros((8, 8), np.uint8); gt[:, 4:] = 255      # a vertical edge
    >>> pred = gt.copy(); pred[3, 3] = 255                    # one pixel wrong
    >>> trimap = np.full((8, 8), 128, np.uint8)               # everything unknown
    >>> from unmix.metrics import gradient_error
    >>> gradient_error(gt, gt, trimap)
    0.0
    >>> round(gradient_error(pred, gt, trimap), 6)
    0.001014
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
    ``(1/1000) Σ_{i∈U} |φ(α_i) − φ(α*_i)|``.

    Parameters are those of :func:`sad`.

    Notes
    -----
    On 8-bit mattes the threshold tests are done in integers, v ≥ ⌈25.5 k⌉,
    which is what MATLAB's single-precision α ≥ double t computes; a float64
    port with ``np.arange(0, 1.05, 0.1)`` thresholds puts 153/255 = 0.6
    below its t = 0.6000000000000001 (spec §4.2). When a thresholded
    intersection is empty, Ω_k is empty and every pixel still unassigned
    gets l = t_{k−1} (the reference's behaviour there is undefined).

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.zeros((8, 8), np.uint8); gt[:, 4:] = 255      # a vertical edge
    >>> pred = gt.copy(); pred[3, 3] = 255                    # one pixel wrong
    >>> trimap = np.full((8, 8), 128, np.uint8)               # everything unknown
    >>> from unmix.metrics import connectivity_error
    >>> connectivity_error(gt, gt, trimap), connectivity_error(pred, gt, trimap)
    (0.0, 0.001)
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

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.zeros((8, 8), np.uint8); gt[:, 4:] = 255      # a vertical edge
    >>> pred = gt.copy(); pred[3, 3] = 255                    # one pixel wrong
    >>> trimap = np.full((8, 8), 128, np.uint8)               # everything unknown
    >>> from unmix.metrics import matting_errors
    >>> errors = matting_errors(pred, gt, trimap)
    >>> {name: round(value, 6) for name, value in errors.items()}
    {'sad': 0.001, 'mse': 0.015625, 'gradient': 0.001014, 'connectivity': 0.001}
    """
    return {
        "sad": sad(pred, target, trimap, quantize=quantize),
        "mse": mse(pred, target, trimap, quantize=quantize),
        "gradient": gradient_error(pred, target, trimap, quantize=quantize),
        "connectivity": connectivity_error(pred, target, trimap, quantize=quantize),
    }


# ----------------------------------------------------------------------------- layer unions

#: Most layers :func:`best_layer_union` searches exhaustively (2^K − 1 subsets).
_MAX_UNION_LAYERS = 12
#: Pixels per part of the subset search. The parts' error sums are added in order,
#: so their rounding depends on the data only, never on the number of threads.
_UNION_PART_PIXELS = 4096
_UNION_CRITERIA = ("mse", "sad")
_UNION_REGIONS = ("image", "unknown")


@dataclass(frozen=True, eq=False)
class LayerUnion:
    """The best union of soft layers against a matte, from :func:`best_layer_union`.

    Attributes
    ----------
    subset : tuple of int
        The indices of the united layers, sorted.
    alpha : ndarray, shape (H, W)
        Their matte: the sum of their alphas clipped to [0, 1] (float64,
        not quantised).
    sad, mse : float
        :func:`sad` and :func:`mse` of ``alpha`` over the whole image.
    sad_unknown, mse_unknown : float or None
        The same inside the trimap's unknown band; None without a trimap.

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.metrics import best_layer_union
    >>> truth = np.array([[1.0, 0.5], [0.0, 0.0]])
    >>> union = best_layer_union(np.stack([0.6 * truth, 0.4 * truth, 1.0 - truth], axis=2), truth)
    >>> union.subset, union.sad
    ((0, 1), 0.0)
    >>> union.alpha                   # the union's matte
    array([[1. , 0.5],
           [0. , 0. ]])
    """

    subset: tuple
    alpha: np.ndarray = field(repr=False)
    sad: float
    mse: float
    sad_unknown: float = None
    mse_unknown: float = None


@functools.lru_cache(maxsize=None)
def _subset_error_kernel():
    """The subset-search kernel; Numba is imported, and the kernel compiled or
    loaded from its disk cache, on first use only."""
    from numba import njit, prange

    @njit(cache=True, parallel=True)
    def subset_errors(alphas, target, k_low, part_pixels, squared, quantize):
        """The error sum of every subset of the K layers, per part of ``part_pixels`` pixels.

        Subset s holds layer k where bit k of s is set. At each pixel its
        alpha is sums[s mod 2^k_low] + sums[2^k_low + s div 2^k_low]: the
        tabulated subset sums of the first k_low layers, then of the others,
        so the 2^K unions cost one addition each. The alpha is clipped to
        [0, 1], rounded to its 8-bit code if ``quantize`` (``target`` then
        holds codes), and (α − α*)² if ``squared``, else |α − α*|, added to
        the subset's sum.
        """
        n_pixels, n_layers = alphas.shape
        n_subsets = 1 << n_layers
        n_low = 1 << k_low
        n_high = n_subsets >> k_low
        n_parts = (n_pixels + part_pixels - 1) // part_pixels
        errors = np.zeros((n_parts, n_subsets))
        for part in prange(n_parts):
            sums = np.empty(n_low + n_high)
            for pixel in range(part * part_pixels, min((part + 1) * part_pixels, n_pixels)):
                for first_layer, last_layer, start in ((0, k_low, 0), (k_low, n_layers, n_low)):
                    sums[start] = 0.0
                    for k in range(first_layer, last_layer):
                        step = 1 << (k - first_layer)
                        for s in range(step):
                            sums[start + step + s] = sums[start + s] + alphas[pixel, k]
                reference = target[pixel]
                for high in range(n_high):
                    high_sum = sums[n_low + high]
                    first_subset = high * n_low
                    for low in range(n_low):
                        value = min(max(sums[low] + high_sum, 0.0), 1.0)
                        if quantize:
                            value = np.rint(value * 255.0)
                        difference = value - reference
                        errors[part, first_subset + low] += (
                            difference * difference if squared else abs(difference))
        return errors

    return subset_errors


def _subset_errors(alphas, target, squared, quantize):
    """Error sum of every subset s of the columns of ``alphas`` (P, K) (bit k of s:
    column k) against ``target`` (P,); inf for the empty subset."""
    from ._numba import threads_for

    n_pixels, n_layers = alphas.shape
    kernel = _subset_error_kernel()
    with threads_for(n_pixels << n_layers):
        errors = kernel(np.ascontiguousarray(alphas), np.ascontiguousarray(target), n_layers // 2,
                        _UNION_PART_PIXELS, squared, quantize).sum(axis=0)
    errors[0] = np.inf
    return errors


def _least_error_subset(errors, n_layers):
    """The sorted layer indices of the least error; ties go to the fewest layers,
    then to the first in lexicographic order."""
    bits = np.arange(n_layers)
    tied = (np.flatnonzero((s >> bits) & 1) for s in np.flatnonzero(errors == errors.min()))
    return min((tuple(int(k) for k in subset) for subset in tied),
               key=lambda subset: (len(subset), subset))


def _union_alphas(layers):
    """The (H, W, K) float64 alphas of a :class:`~unmix.Layers` or an array, checked."""
    from .layers import Layers

    alphas = layers.alphas if isinstance(layers, Layers) else as_array(layers, "layers")
    if not (np.issubdtype(alphas.dtype, np.floating) or alphas.dtype == bool):
        raise TypeError(f"layers must be a Layers or float alphas of shape (H, W, K), "
                        f"got dtype {alphas.dtype}")
    alphas = real_array(alphas, "layers", ndims=(3,))
    if alphas.shape[2] > _MAX_UNION_LAYERS:
        raise ValueError(f"layers must have at most {_MAX_UNION_LAYERS} layers for the exhaustive "
                         f"search over their 2^K − 1 subsets, got K = {alphas.shape[2]}")
    return alphas


def best_layer_union(layers, alpha_true, trimap=None, *, criterion="mse", region="image",
                     quantize=True):
    """The union of soft layers closest to a ground-truth matte, over all subsets.

    A soft segment selects an object as a subset of its K layers whose summed
    alpha is the object's matte. Every non-empty subset S is scored: its
    matte α_S = clip(Σ_{k∈S} α_k, 0, 1) (layers may lie slightly outside
    [0, 1] and their sums above 1; the clip is what the 8-bit evaluation does
    too) against ``alpha_true``, with :func:`mse` or :func:`sad` over the
    image or inside the trimap's unknown band.

    Parameters
    ----------
    layers : Layers or array_like, shape (H, W, K)
        The soft layers (their alphas), K ≤ 12.
    alpha_true : array_like, shape (H, W)
        Ground-truth matte: ``uint8`` or floats in [0, 1], as for :func:`sad`.
    trimap : array_like, shape (H, W), optional
        As for :func:`sad`: its unknown band is where the errors in the band
        are measured (and the subset chosen, with ``region="unknown"``).
    criterion : {"mse", "sad"}, optional
        The error the chosen subset minimises (default ``"mse"``).
    region : {"image", "unknown"}, optional
        Where ``criterion`` is measured: the whole image (default) or the
        trimap's unknown band (needs ``trimap``).
    quantize : bool, optional
        Round the mattes to 8 bits before comparing them, as :func:`sad` does
        (default True).

    Returns
    -------
    LayerUnion
        ``subset`` (sorted layer indices), ``alpha`` (α_S), and ``sad``,
        ``mse`` over the image and ``sad_unknown``, ``mse_unknown`` in the
        band (None without a trimap), computed by :func:`sad` and :func:`mse`.

    Raises
    ------
    ValueError
        For more than 12 layers, shapes that differ, NaN or infinite values,
        an unknown ``criterion`` or ``region``, ``region="unknown"`` without a
        trimap or with an empty band.
    TypeError
        For layers or mattes of an unsupported dtype.

    Notes
    -----
    Ties go to the subset with the fewest layers, then to the first in
    lexicographic order; with 8-bit mattes the errors are sums of integer
    codes, so ties are exact. The search tabulates, per pixel, the subset
    sums of the first ⌊K/2⌋ layers and of the others, so each of the 2^K
    unions costs one addition, in a compiled kernel that runs in parallel
    over parts of 4096 pixels. Beyond a copy of the searched pixels' alphas
    (30 MB at 640×480, K = 12) it holds one error sum per part and subset
    (2.5 MB): the memory grows with the pixels, not with 2^K.

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.metrics import best_layer_union
    >>> truth = np.array([[1.0, 0.5], [0.0, 0.0]])
    >>> layers = np.stack([0.6 * truth, 0.4 * truth, 1.0 - truth], axis=2)
    >>> union = best_layer_union(layers, truth)  # the object is layers 0 and 1
    >>> union.subset, union.sad, union.mse
    ((0, 1), 0.0, 0.0)
    >>> trimap = np.array([[255, 128], [0, 0]], np.uint8)
    >>> best_layer_union(layers, truth, trimap, criterion="sad", region="unknown").sad_unknown
    0.0
    """
    alphas = _union_alphas(layers)
    if criterion not in _UNION_CRITERIA:
        raise ValueError(f"criterion must be 'mse' or 'sad', got {criterion!r}")
    if region not in _UNION_REGIONS:
        raise ValueError(f"region must be 'image' or 'unknown', got {region!r}")
    if region == "unknown" and trimap is None:
        raise ValueError("region='unknown' needs a trimap, got trimap=None")
    shape = alphas.shape[:2]
    target, target_codes = _matte(alpha_true, "alpha_true", shape, quantize)
    band = None if trimap is None else _region(trimap, shape)
    if region == "unknown" and not band.any():
        raise ValueError("trimap has no unknown pixels (code 128) to choose the layers by")
    searched = band if region == "unknown" else np.ones(shape, dtype=bool)
    reference = target_codes.astype(np.float64) if quantize else target
    errors = _subset_errors(alphas[searched], reference[searched], criterion == "mse", quantize)
    subset = _least_error_subset(errors, alphas.shape[2])
    alpha = np.clip(alphas[:, :, list(subset)].sum(axis=2), 0.0, 1.0)
    in_band = {} if band is None else {
        "sad_unknown": sad(alpha, alpha_true, band, quantize=quantize),
        "mse_unknown": mse(alpha, alpha_true, band, quantize=quantize)}
    return LayerUnion(subset, alpha, sad(alpha, alpha_true, quantize=quantize),
                      mse(alpha, alpha_true, quantize=quantize), **in_band)


def __getattr__(name):
    if name in _COLOR_METRICS:
        from .color import metrics

        return getattr(metrics, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_COLOR_METRICS))
