"""Grouping of soft segments by their mean feature (spec ``sss.md`` §11)."""

import numpy as np

from .._checks import as_array, feature_array, integer, real_array
from ._kmeans import kmeans_labels

__all__ = ["group_segments", "segment_mean_features"]


def segment_mean_features(alphas, features):
    """Alpha-weighted mean feature of each soft segment.

    .. math:: m_i = \\frac{\\sum_p \\alpha_{pi} F_p}{\\sum_p \\alpha_{pi}}

    Parameters
    ----------
    alphas : ndarray, shape (H, W, C)
    features : ndarray, shape (H, W, D)

    Returns
    -------
    means : ndarray, shape (C, D)

    Raises
    ------
    ValueError
        If a segment's alphas sum to zero (its mean is undefined). Soft
        segments may be negative in places, so the sum can be small; it is
        used as is, as in the released code.

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.spectral import segment_mean_features
    >>> alphas = np.dstack([np.full((2, 2), 0.75), np.full((2, 2), 0.25)])
    >>> features = np.array([[[0.0], [1.0]], [[0.0], [1.0]]])
    >>> segment_mean_features(alphas, features)
    array([[0.5],
           [0.5]])
    """
    alphas = real_array(alphas, "alphas", (3,))
    return _mean_features(alphas, feature_array(features, alphas.shape[:2]))


def _mean_features(alphas, features):
    """:func:`segment_mean_features` of checked float64 arrays."""
    C = alphas.shape[2]
    A = alphas.reshape(-1, C)
    totals = A.sum(axis=0)
    empty = np.flatnonzero(totals == 0)
    if len(empty):
        raise ValueError(f"alphas: soft segments {empty.tolist()} sum to zero: their mean "
                         "feature is undefined")
    return (A.T @ features.reshape(-1, features.shape[2])) / totals[:, None]


def group_segments(alphas, features, n_groups=5, group_labels=None, random_state=0,
                   n_init=20, return_labels=False):
    """Merge soft segments into ``n_groups`` layers by k-means on their mean features.

    Each segment's alpha-weighted mean feature is clustered with k-means
    (k-means++ seeding); the segments of a cluster are summed into one layer.
    Sums of soft segments keep their sum-to-one property (paper §3.4).

    Parameters
    ----------
    alphas : array_like, shape (H, W, C)
        Soft segments (the output of constrained sparsification).
    features : array_like, shape (H, W, D)
        The per-pixel features the segments were computed from.
    n_groups : int, optional
        Number of output layers (5 in the paper).
    group_labels : array_like of int, shape (C,), optional
        The group of each segment, in ``0 .. n_groups - 1``. Skips k-means:
        for tests, or to reproduce a grouping computed elsewhere.
    random_state : int or numpy.random.Generator, optional
        Seed of the k-means initialisation.
    n_init : int, optional
        Number of k-means runs; the grouping of lowest inertia is kept (20).
        The released code runs MATLAB's ``kmeans`` once, so its grouping
        changes with the seed; with about 20 points to cluster, 20 runs cost
        milliseconds and make the layers far less dependent on the seed.
    return_labels : bool, optional
        Also return the group of each segment.

    Returns
    -------
    grouped : ndarray, shape (H, W, n_groups)
    labels : ndarray, shape (C,), int
        Only if ``return_labels``.

    Examples
    --------
    Segments with the same feature fall into the same group:

    >>> import numpy as np
    >>> from unmix.spectral import group_segments
    >>> features = np.zeros((4, 4, 1)); features[:, 2:] = 1.0
    >>> left, right = features[..., 0] == 0, features[..., 0] == 1
    >>> alphas = np.dstack([0.5 * left, 0.5 * left, 0.5 * right, 0.5 * right])
    >>> grouped, labels = group_segments(alphas, features, n_groups=2, return_labels=True)
    >>> grouped.shape, bool(labels[0] == labels[1] != labels[2] == labels[3])
    ((4, 4, 2), True)
    >>> bool(np.allclose(grouped.sum(axis=2), 1.0))
    True
    """
    alphas = real_array(alphas, "alphas", (3,))
    features = feature_array(features, alphas.shape[:2])
    C = alphas.shape[2]
    n_groups = integer("n_groups", n_groups, 1)
    if C < n_groups:
        raise ValueError(
            f"cannot group {C} soft segments into n_groups={n_groups} layers; "
            f"expected at least {n_groups} segments (lower n_groups, or keep the segments as they are)"
        )
    if group_labels is None:
        n_init = integer("n_init", n_init, 1)
        labels = kmeans_labels(_mean_features(alphas, features), n_groups, random_state,
                               n_init)
    else:
        labels = as_array(group_labels, "group_labels")
        if labels.shape != (C,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"group_labels must be {C} integers (one per segment), got {labels.dtype} array "
                f"of shape {labels.shape}"
            )
        if labels.min() < 0 or labels.max() >= n_groups:
            raise ValueError(
                f"group_labels must lie in [0, {n_groups - 1}], got values in "
                f"[{labels.min()}, {labels.max()}]"
            )
    # One matrix product sums the members of each group: alphas @ one-hot(labels).
    membership = np.zeros((C, n_groups))
    membership[np.arange(C), labels] = 1.0
    grouped = (alphas.reshape(-1, C) @ membership).reshape(alphas.shape[:2] + (n_groups,))
    return (grouped, labels) if return_labels else grouped

