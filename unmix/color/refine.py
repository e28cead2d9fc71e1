"""Matte regularisation and colour refinement (spec ``color.md`` §6–7).

Per-pixel unmixing leaves alphas that are noisy where neighbouring pixels
chose different layers. The paper smooths each alpha with a guided filter
(He et al.) guided by the image, which keeps the transitions on the image's
edges, clips and renormalises (§6); then it re-solves the colours with the
alphas fixed, so the layers again add up to the image (§7).
"""

import logging

import numpy as np

from .._checks import choice, integer, real_array

from ..filters import guided_filter
from ..image import as_float_image
from .unmixing import closed_form_colors, sparse_color_unmixing

__all__ = ["matte_radius", "refine_colors", "regularize_alphas"]

log = logging.getLogger("unmix")


#: The largest guided-filter radius accepted (its box side 2r + 1 must fit the filters').
_MAX_RADIUS = 2**15 - 1


def matte_radius(shape):
    """The guided filter's radius for an image of ``shape``: r = 60 at 1 MP (spec §6).

    ``max(1, round(60 · min(H, W) / 1000))``: Koyama's and unblending's
    scaling of the paper's r = 60 for a 1-megapixel image, with ``unmix``'s
    rounding.

    Examples
    --------
    >>> from unmix.color import matte_radius
    >>> matte_radius((480, 640)), matte_radius((24, 32))
    (29, 1)
    """
    try:
        sides = [int(side) for side in shape[:2]]
    except (TypeError, ValueError, IndexError):
        raise TypeError(f"shape must be a sequence (H, W, ...) of integers, got {shape!r}") from None
    if len(sides) != 2 or min(sides) < 1:
        raise ValueError(f"shape must start with two positive sides (H, W), got {shape!r}")
    return max(1, int(round(60 * min(sides) / 1000)))


def regularize_alphas(image, alphas, radius=None, eps=1e-4, return_fallback=False):
    """Guided-filter each alpha with the image as colour guide, clip, renormalise (§6).

    Parameters
    ----------
    image : array_like, shape (H, W, 3)
        The guide.
    alphas : array_like, shape (H, W, K)
        The unmixing's alphas.
    radius : int, optional
        Window radius r (windows (2r + 1)², replicate borders, divided by
        (2r + 1)² as Koyama's box filter); :func:`matte_radius` by default.
    eps : float, optional
        ε of the guided filter (1e-4, the paper's).
    return_fallback : bool, optional
        Also return the number of pixels whose filtered alphas were all
        clipped to 0 and which therefore keep their unfiltered alphas.

    Returns
    -------
    alphas : ndarray, shape (H, W, K)
        In [0, 1], summing to one at every pixel.
    n_fallback : int, only with ``return_fallback``

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.color import ColorModels, regularize_alphas, sparse_color_unmixing
    >>> from unmix.image import example_image
    >>> image = example_image("coffee", (48, 64))
    >>> models = ColorModels.from_palette([[0.9, 0.9, 0.9], [0.4, 0.2, 0.1], [0.1, 0.1, 0.1]])
    >>> alphas, _ = sparse_color_unmixing(image, models)
    >>> smooth = regularize_alphas(image, alphas)
    >>> smooth.shape, bool(np.abs(smooth.sum(axis=2) - 1).max() < 1e-6)
    ((48, 64, 3), True)
    """
    image = as_float_image(image)
    alphas = real_array(alphas, "alphas")
    if alphas.ndim != 3 or alphas.shape[:2] != image.shape[:2] or alphas.shape[2] < 1:
        raise ValueError(f"alphas must have shape (H, W, K) with (H, W) = {image.shape[:2]}, "
                         f"got {alphas.shape}")
    radius = matte_radius(image.shape) if radius is None else integer("radius", radius, 1,
                                                                        _MAX_RADIUS)
    filtered = np.clip(guided_filter(alphas, image, 2 * radius + 1, eps), 0.0, 1.0)
    sums = filtered.sum(axis=2, keepdims=True)
    empty = sums[:, :, 0] <= 0
    n_fallback = int(np.count_nonzero(empty))
    if n_fallback:
        # unmix's own fallback (spec §6): nothing survived the clip here.
        log.info("matte regularisation: %d pixels keep their unfiltered alphas", n_fallback)
        filtered[empty] = np.clip(alphas[empty], 0.0, 1.0)
        sums = filtered.sum(axis=2, keepdims=True)
        # Alphas that are all zero or negative even before filtering: no layer is preferred.
        filtered[sums[:, :, 0] <= 0] = 1.0
        sums = filtered.sum(axis=2, keepdims=True)
    filtered /= sums
    return (filtered, n_fallback) if return_fallback else filtered


def refine_colors(image, models, alphas, method="fast", initial_colors=None):
    """Layer colours for fixed, regularised alphas (§7).

    Parameters
    ----------
    image : array_like, shape (H, W, 3)
    models : ColorModels
    alphas : array_like, shape (H, W, K)
        The regularised alphas α̂ (non-negative, summing to one).
    method : {"fast", "mom"}, optional
        ``"fast"``: the closed form of §5.1 with α = α̂, brought into
        [0, 1] by :func:`~unmix.color.unmixing.closed_form_colors` (exact
        when no colour leaves the box). ``"mom"``: the method of
        multipliers on the colours with the alphas frozen at α̂ and no
        sparsity term, started from ``initial_colors`` (see
        :func:`~unmix.color.unmixing.sparse_color_unmixing`'s
        ``target_alphas`` for why not the paper's Σ_i (α_i − α̂_i)² = 0).
    initial_colors : array_like, shape (H, W, K, 3), optional
        The first solve's colours (``"mom"``).

    Returns
    -------
    alphas : ndarray, shape (H, W, K)
        α̂ itself.
    colors : ndarray, shape (H, W, K, 3)

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.color import (ColorModels, refine_colors, regularize_alphas,
    ...                          sparse_color_unmixing)
    >>> from unmix.image import example_image
    >>> image = example_image("coffee", (48, 64))
    >>> models = ColorModels.from_palette([[0.9, 0.9, 0.9], [0.4, 0.2, 0.1], [0.1, 0.1, 0.1]])
    >>> alphas = regularize_alphas(image, sparse_color_unmixing(image, models)[0])
    >>> alphas, colors = refine_colors(image, models, alphas)
    >>> colors.shape
    (48, 64, 3, 3)
    >>> bool(np.abs((alphas[..., None] * colors).sum(axis=2) - image).max() < 1e-6)
    True
    """
    image = as_float_image(image)
    method = choice("method", method, ("fast", "mom"))
    alphas = real_array(alphas, "alphas")
    if method == "fast":
        return alphas, closed_form_colors(image, models, alphas)
    return sparse_color_unmixing(image, models, method="mom", target_alphas=alphas,
                                 initial_colors=initial_colors)
