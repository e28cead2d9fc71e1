"""Blind quality metrics of soft colour layers (spec ``color.md`` §8).

They need no ground truth: they check the requirements of Aksoy et al.
2017 §3 (the layers add up to the image, alphas sum to one and stay in the
box, layers are sparse and of homogeneous colour, mattes are smooth), on
the [0, 1] scale. Each takes :class:`unmix.Layers` (any method's: soft
colour segmentation, FSCS, or matting layers with colours) and, where
needed, the image; :func:`soft_color_metrics` computes them all.
"""

import math
import warnings

import numpy as np

from ..image import as_float_image
from ..layers import Layers

__all__ = [
    "alpha_sum_error",
    "alpha_tv",
    "box_violation",
    "color_variance",
    "reconstruction_mse",
    "soft_color_metrics",
    "sparsity",
]


def _layers(layers, need_colors=False):
    if not isinstance(layers, Layers):
        raise TypeError(f"layers must be a Layers, got {type(layers).__name__}")
    if need_colors and layers.colors is None:
        raise ValueError("these layers have no colours; this metric needs them "
                         "(call layers.estimate_colors(image) first)")
    return layers


def reconstruction_mse(image, layers):
    """Mean over pixels and channels of (c − Σ_i α_i u_i)².

    Parameters
    ----------
    image : array_like, shape (H, W, 3)
    layers : Layers
        With colours.

    Examples
    --------
    >>> import numpy as np
    >>> from unmix import Layers
    >>> alphas = np.dstack([np.full((2, 2), 0.25), np.full((2, 2), 0.75)])
    >>> colors = np.stack([np.broadcast_to([1.0, 0.0, 0.0], (2, 2, 3)),
    ...                    np.broadcast_to([0.0, 0.0, 1.0], (2, 2, 3))], axis=2)
    >>> layers = Layers(alphas, colors)
    >>> from unmix.metrics import reconstruction_mse
    >>> reconstruction_mse(np.full((2, 2, 3), [0.25, 0.0, 0.75]), layers)
    0.0
    """
    layers = _layers(layers, need_colors=True)
    image = as_float_image(image, min_side=1)
    if image.shape[:2] != layers.shape:
        raise ValueError(f"image has shape {image.shape[:2]}, the layers {layers.shape}")
    recomposed = np.einsum("yxk,yxkc->yxc", layers.alphas, layers.colors)
    return float(np.mean((image - recomposed) ** 2))


def alpha_sum_error(layers):
    """(mean, max) over pixels of ``|Σ_i α_i − 1|``.

    Examples
    --------
    >>> import numpy as np
    >>> from unmix import Layers
    >>> alphas = np.dstack([np.full((2, 2), 0.25), np.full((2, 2), 0.75)])
    >>> colors = np.stack([np.broadcast_to([1.0, 0.0, 0.0], (2, 2, 3)),
    ...                    np.broadcast_to([0.0, 0.0, 1.0], (2, 2, 3))], axis=2)
    >>> layers = Layers(alphas, colors)
    >>> from unmix.metrics import alpha_sum_error
    >>> alpha_sum_error(layers)
    (0.0, 0.0)
    """
    error = np.abs(_layers(layers).alphas.sum(axis=2) - 1.0)
    return float(error.mean()), float(error.max())


def box_violation(layers):
    """(fraction of α and u entries outside [0, 1], most negative α).

    Examples
    --------
    >>> import numpy as np
    >>> from unmix import Layers
    >>> alphas = np.dstack([np.full((2, 2), 0.25), np.full((2, 2), 0.75)])
    >>> colors = np.stack([np.broadcast_to([1.0, 0.0, 0.0], (2, 2, 3)),
    ...                    np.broadcast_to([0.0, 0.0, 1.0], (2, 2, 3))], axis=2)
    >>> layers = Layers(alphas, colors)
    >>> from unmix.metrics import box_violation
    >>> outside, lowest = box_violation(layers)
    >>> float(outside), float(lowest)      # nothing outside [0, 1]; the lowest alpha
    (0.0, 0.25)
    """
    layers = _layers(layers)
    entries = [layers.alphas] if layers.colors is None else [layers.alphas, layers.colors]
    outside = sum(np.count_nonzero((e < 0) | (e > 1)) for e in entries)
    return outside / sum(e.size for e in entries), float(layers.alphas.min())


def sparsity(layers):
    """Mean over pixels of Σ_i α_i / Σ_i α_i² − 1 (FSCS Eq. 10); 0 for hard layers.

    Alphas are taken as they are (not clipped). Pixels whose alphas are all
    zero are skipped.

    Examples
    --------
    >>> import numpy as np
    >>> from unmix import Layers
    >>> alphas = np.dstack([np.full((2, 2), 0.25), np.full((2, 2), 0.75)])
    >>> colors = np.stack([np.broadcast_to([1.0, 0.0, 0.0], (2, 2, 3)),
    ...                    np.broadcast_to([0.0, 0.0, 1.0], (2, 2, 3))], axis=2)
    >>> layers = Layers(alphas, colors)
    >>> from unmix.metrics import sparsity
    >>> round(sparsity(layers), 6)          # 0 for hard layers
    0.6
    """
    alphas = _layers(layers).alphas
    squares = np.sum(alphas * alphas, axis=2)
    keep = squares > 0
    return float(np.mean(alphas.sum(axis=2)[keep] / squares[keep] - 1.0))


def color_variance(layers):
    """Alpha-weighted colour variance, averaged over layers.

    For each layer i, ``Σ_p α_i^p ‖u_i^p − ū_i‖² / Σ_p α_i^p`` with ū_i the
    alpha-weighted mean colour (‖·‖² sums over RGB: the sum of the
    per-channel variances). Layers with Σ_p α_i^p = 0 are skipped, with a
    warning.

    Examples
    --------
    Constant colours have no variance:

    >>> import numpy as np
    >>> from unmix import Layers
    >>> alphas = np.dstack([np.full((2, 2), 0.25), np.full((2, 2), 0.75)])
    >>> colors = np.stack([np.broadcast_to([1.0, 0.0, 0.0], (2, 2, 3)),
    ...                    np.broadcast_to([0.0, 0.0, 1.0], (2, 2, 3))], axis=2)
    >>> layers = Layers(alphas, colors)
    >>> from unmix.metrics import color_variance
    >>> color_variance(layers)
    0.0
    """
    layers = _layers(layers, need_colors=True)
    weights = layers.alphas.reshape(-1, layers.n_layers)
    colors = layers.colors.reshape(-1, layers.n_layers, 3)
    mass = weights.sum(axis=0)
    empty = mass <= 0
    if empty.any():
        warnings.warn(f"color_variance: layers {np.flatnonzero(empty).tolist()} have no alpha "
                      "and are skipped", UserWarning, stacklevel=2)
    if empty.all():
        return math.nan
    mass = np.where(empty, 1.0, mass)
    mean = np.einsum("pk,pkc->kc", weights, colors) / mass[:, None]
    spread = np.einsum("pk,pkc->k", weights, (colors - mean) ** 2) / mass
    return float(spread[~empty].mean())


def alpha_tv(layers):
    """Mean over layers and pixels of ‖∇α‖₁ (forward differences): spatial coherence.

    Examples
    --------
    Constant alphas have no total variation:

    >>> import numpy as np
    >>> from unmix import Layers
    >>> alphas = np.dstack([np.full((2, 2), 0.25), np.full((2, 2), 0.75)])
    >>> colors = np.stack([np.broadcast_to([1.0, 0.0, 0.0], (2, 2, 3)),
    ...                    np.broadcast_to([0.0, 0.0, 1.0], (2, 2, 3))], axis=2)
    >>> layers = Layers(alphas, colors)
    >>> from unmix.metrics import alpha_tv
    >>> alpha_tv(layers)
    0.0
    """
    alphas = _layers(layers).alphas
    dy = np.abs(np.diff(alphas, axis=0)).sum() / alphas.size
    dx = np.abs(np.diff(alphas, axis=1)).sum() / alphas.size
    return float(dx + dy)


def soft_color_metrics(image, layers):
    """All the metrics of spec §8 in a dict.

    Keys: ``recon_mse``, ``recon_psnr``, ``alpha_sum_error`` and
    ``alpha_sum_error_max``, ``box_violation`` and ``min_alpha``,
    ``sparsity``, ``color_variance``, ``alpha_tv``, ``n_layers`` and
    ``n_nonempty_layers`` (max α > 0.1).

    Examples
    --------
    >>> import numpy as np
    >>> from unmix import Layers
    >>> alphas = np.dstack([np.full((2, 2), 0.25), np.full((2, 2), 0.75)])
    >>> colors = np.stack([np.broadcast_to([1.0, 0.0, 0.0], (2, 2, 3)),
    ...                    np.broadcast_to([0.0, 0.0, 1.0], (2, 2, 3))], axis=2)
    >>> layers = Layers(alphas, colors)
    >>> from unmix.metrics import soft_color_metrics
    >>> scores = soft_color_metrics(np.full((2, 2, 3), [0.25, 0.0, 0.75]), layers)
    >>> scores["recon_mse"], scores["n_layers"]
    (0.0, 2)
    """
    layers = _layers(layers, need_colors=True)
    mse = reconstruction_mse(image, layers)
    sum_mean, sum_max = alpha_sum_error(layers)
    outside, min_alpha = box_violation(layers)
    return {
        "recon_mse": mse,
        "recon_psnr": 10 * math.log10(1.0 / mse) if mse > 0 else math.inf,
        "alpha_sum_error": sum_mean,
        "alpha_sum_error_max": sum_max,
        "box_violation": outside,
        "min_alpha": min_alpha,
        "sparsity": sparsity(layers),
        "color_variance": color_variance(layers),
        "alpha_tv": alpha_tv(layers),
        "n_layers": layers.n_layers,
        "n_nonempty_layers": int(np.count_nonzero(layers.alphas.max(axis=(0, 1)) > 0.1)),
    }
