"""The one k-means of semantic soft segmentation (initialisation and grouping)."""

import warnings

import numpy as np

from .._checks import seed

#: Most Lloyd iterations of each run (MATLAB's ``kmeans`` default ``MaxIter``).
_MAX_ITERATIONS = 100


def seeded_kmeans(points, n_clusters, random_state=0, n_init=1, max_samples=None):
    """Centres of seeded k-means++ runs (SciPy's ``kmeans2``) on the rows of ``points``.

    Each run seeds with k-means++ and takes Lloyd steps until no point changes
    cluster (the centres are then a fixed point), at most 100; MATLAB's
    ``kmeans`` stops the same way. Of ``n_init`` runs, the centres of lowest
    inertia are kept. With ``max_samples``, they are fitted on a seeded random
    subset of at most that many rows (:func:`nearest_centre` labels any
    points). ``random_state`` may be an int, a ``numpy.random.Generator`` or
    a ``RandomState``.

    Returns
    -------
    centres : ndarray, shape (n_clusters, D)
    """
    rng = (random_state if isinstance(random_state, (np.random.Generator, np.random.RandomState))
           else np.random.default_rng(seed("random_state", random_state)))
    points = np.asarray(points, dtype=np.float64)
    if max_samples is not None and len(points) > max_samples:
        points = points[np.sort(rng.choice(len(points), max_samples, replace=False))]
    best, best_inertia = None, np.inf
    for _ in range(n_init):
        centres, labels = _lloyd(points, n_clusters, rng)
        inertia = float(((points - centres[labels]) ** 2).sum())
        if inertia < best_inertia:
            best, best_inertia = centres, inertia
    return best


def _lloyd(points, n_clusters, rng):
    """One k-means++-seeded run; returns the centres and the labels they give."""
    from scipy.cluster.vq import kmeans2

    with warnings.catch_warnings():
        # Fewer distinct points than clusters: k-means++ then divides by a zero total
        # distance and some clusters stay empty (SciPy warns for both). Empty clusters
        # label no pixel; the constrained stage prunes the zero layers they give (§10.3).
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.filterwarnings("ignore", message="One of the clusters is empty")
        # kmeans2 always takes all ``iter`` steps; one step per call lets us stop at the
        # fixed point. Each call labels the points by the centres it was given, then
        # moves the centres to the means of those labels.
        centres, labels = kmeans2(points, n_clusters, iter=1, minit="++", missing="warn",
                                  seed=rng)
        for _ in range(_MAX_ITERATIONS - 1):
            centres, new_labels = kmeans2(points, centres, iter=1, minit="matrix",
                                          missing="warn")
            if np.array_equal(new_labels, labels):
                break
            labels = new_labels
    return centres, nearest_centre(points, centres)


def nearest_centre(points, centres):
    """Label of each row of ``points``: the index of its nearest centre (int64)."""
    from scipy.cluster.vq import vq

    return vq(np.asarray(points, dtype=np.float64), centres, check_finite=False)[0].astype(np.int64)


def kmeans_labels(points, n_clusters, random_state=0, n_init=1):
    """Labels of the rows of ``points`` by :func:`seeded_kmeans` fitted on all of them."""
    return nearest_centre(points, seeded_kmeans(points, n_clusters, random_state, n_init))
