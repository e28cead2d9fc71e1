"""Preprocessing of raw per-pixel features, as the released SSS code does it.

Raw network embeddings (H×W×D, D = 128 for the SSS network) become the
3-channel feature image F in [0, 1] that the semantic affinity is calibrated
for (spec ``sss.md`` §3): clamp, edge-aware smoothing with the image as guide,
PCA to three dimensions, per-channel min–max normalisation.
"""

import warnings

import numpy as np

from ..filters import guided_filter
from .._checks import feature_array, integer, positive, real_array
from ..image import as_float_image

__all__ = ["preprocess_features", "pca_features"]


def preprocess_features(features, image, clamp=5.0, window=10, eps=0.01):
    """Turn raw features (H×W×D) into the 3-channel feature image in [0, 1].

    Parameters
    ----------
    features : array_like, shape (H, W, D), D >= 3
        Raw per-pixel features.
    image : array_like, shape (H, W, 3)
        The image, used as the guide of the guided filter.
    clamp : float, optional
        Features are clipped to [-clamp, clamp] first (the released code's
        guard against "instability in the network").
    window : int, optional
        Side of the guided filter's box (MATLAB ``NeighborhoodSize`` 10, an
        even window covering offsets -4 … +5).
    eps : float, optional
        ε of the guided filter (MATLAB's default ``DegreeOfSmoothing``,
        0.01 for a double-precision guide).

    Returns
    -------
    F : ndarray, shape (H, W, 3), float64 in [0, 1]

    Notes
    -----
    The released code filters the channels in consecutive triples with the
    RGB image as guide. Because input and guide then both have three channels,
    MATLAB's ``imguidedfilter`` runs three *grey* guided filters, pairing
    feature channel ``i + k`` with image channel ``k`` (R, G, B). The
    ``D mod 3`` remaining channels are each filtered with the full colour
    guide. Both are reproduced here (spec §3.2).

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.features import preprocess_features
    >>> from unmix.image import example_image
    >>> image = example_image("coffee", (24, 32))
    >>> raw = np.random.default_rng(0).normal(size=(24, 32, 16))
    >>> F = preprocess_features(raw, image)
    >>> F.shape, float(F.min()), float(F.max())
    ((24, 32, 3), 0.0, 1.0)
    """
    image = as_float_image(image)
    features = feature_array(features, image.shape[:2])
    depth = features.shape[2]
    if depth < 3:
        raise ValueError(f"features must have at least 3 channels to reduce to 3, got {depth}")
    clamp = positive("clamp", clamp)
    clamped = np.clip(features, -clamp, clamp)

    filtered = np.empty_like(clamped)
    paired = depth - depth % 3
    # Channel start + k of every triple has image channel k as its grey guide: one
    # filter call per guide channel over all its feature channels shares the guide's
    # box means (the same values as filtering the channels one by one).
    for k in range(3):
        filtered[:, :, k:paired:3] = guided_filter(clamped[:, :, k:paired:3], image[:, :, k],
                                                   window, eps)
    if paired < depth:
        filtered[:, :, paired:] = guided_filter(clamped[:, :, paired:], image, window, eps)
    return minmax_normalize(pca_features(filtered, 3))


def pca_features(features, n_components=3):
    """Project features on their ``n_components`` principal axes.

    Parameters
    ----------
    features : ndarray, shape (H, W, D)
    n_components : int

    Returns
    -------
    projected : ndarray, shape (H, W, n_components)
        Centred features times the eigenvectors of the D×D scatter matrix with
        the largest eigenvalues, in decreasing order. Each eigenvector's sign
        is fixed so that its largest-magnitude entry is positive, which makes
        the result reproducible across libraries (the released code leaves
        the sign to ``eigs``).

    Examples
    --------
    Points along one direction keep their spread in the first component only:

    >>> import numpy as np
    >>> from unmix.features import pca_features
    >>> t = np.linspace(-1.0, 1.0, 12).reshape(3, 4, 1)
    >>> features = np.concatenate([t, 2 * t, -t], axis=2)
    >>> projected = pca_features(features, n_components=2)
    >>> projected.shape
    (3, 4, 2)
    >>> bool(np.abs(projected[..., 1]).max() < 1e-12)
    True
    """
    features = real_array(features, "features", (3,))
    height, width, depth = features.shape
    n_components = integer("n_components", n_components, 1, depth)
    X = features.reshape(-1, depth)
    X = X - X.mean(axis=0)
    _, vectors = np.linalg.eigh(X.T @ X)
    V = vectors[:, ::-1][:, :n_components]
    signs = np.sign(V[np.argmax(np.abs(V), axis=0), np.arange(n_components)])
    return (X @ (V * signs)).reshape(height, width, n_components)


def minmax_normalize(features):
    """Stretch each channel to [0, 1]; a constant channel becomes 0 with a warning."""
    low = features.min(axis=(0, 1))
    span = features.max(axis=(0, 1)) - low
    flat = span <= 0
    if flat.any():
        warnings.warn(
            f"feature channels {np.flatnonzero(flat).tolist()} are constant; set to 0",
            UserWarning,
            stacklevel=3,
        )
    return np.where(flat, 0.0, (features - low) / np.where(flat, 1.0, span))
