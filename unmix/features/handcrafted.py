"""A deterministic, network-free default feature image for semantic soft segmentation.

Semantic features make pixels of one object similar and pixels of different
objects dissimilar, whatever their colour. Without a network, the best
available proxies are region-level cues: colour and texture statistics
pooled over growing neighbourhoods (an object's parts share context even when
their own colours differ), and optionally position.
The channels are standardised, reduced by PCA and aligned to image edges
with a guided filter, as the released code does with network features.
"""

import numpy as np
from scipy.ndimage import gaussian_filter

from ..image import as_float_image
from .preprocess import minmax_normalize, pca_features
from ..filters import guided_filter

__all__ = ["handcrafted_features"]


def handcrafted_features(image, scales=(2.0, 8.0, 24.0), position_weight=0.0, window=10,
                         eps=0.01):
    """Region-level colour, texture and position features, reduced to 3 channels in [0, 1].

    Parameters
    ----------
    image : array_like, shape (H, W, 3)
    scales : sequence of float, optional
        Gaussian pooling scales in pixels at 640×480; scaled with the image's
        size, so a result does not depend on resolution.
    position_weight : float, optional
        Weight of two position channels relative to the (standardised) colour
        and texture channels. Off by default: on the scikit-image photographs
        position split large uniform regions (a table top) into several
        layers; it can help separate look-alike objects far apart.
    window, eps : optional
        The guided filter that snaps the reduced features to image edges.

    Returns
    -------
    features : ndarray, shape (H, W, 3), float64 in [0, 1]

    Notes
    -----
    Channels: CIE L*a*b* colour, its Gaussian means at each scale (context),
    the local standard deviation of L* at each scale (texture), and optionally
    the pixel coordinates. Each channel is standardised to unit variance
    before PCA.

    Examples
    --------
    >>> from unmix.features import handcrafted_features
    >>> from unmix.image import example_image
    >>> F = handcrafted_features(example_image("coffee", (24, 32)))
    >>> F.shape, float(F.min()), float(F.max())
    ((24, 32, 3), 0.0, 1.0)
    """
    from skimage.color import rgb2lab

    image = as_float_image(image)
    height, width = image.shape[:2]
    size = np.hypot(height, width) / 800.0  # 1 at 640×480
    lab = rgb2lab(image) / np.array([100.0, 128.0, 128.0])
    channels = [lab]
    lightness = lab[:, :, 0]
    for scale in scales:
        sigma = max(scale * size, 0.5)
        channels.append(gaussian_filter(lab, sigma=(sigma, sigma, 0), mode="nearest"))
        mean = gaussian_filter(lightness, sigma, mode="nearest")
        square = gaussian_filter(lightness * lightness, sigma, mode="nearest")
        channels.append(np.sqrt(np.maximum(square - mean * mean, 0.0))[:, :, None])
    stacked = np.concatenate(channels, axis=2)
    spread = stacked.reshape(-1, stacked.shape[2]).std(axis=0)
    stacked = stacked / np.where(spread > 0, spread, 1.0)
    if position_weight > 0:
        rows, cols = np.indices((height, width), dtype=np.float64) / max(height, width)
        position = np.stack([rows, cols], axis=2) / rows.std() * position_weight
        stacked = np.concatenate([stacked, position], axis=2)
    reduced = pca_features(stacked, 3)
    return minmax_normalize(guided_filter(reduced, image, window, eps))
