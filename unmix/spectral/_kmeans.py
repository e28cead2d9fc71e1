"""The one k-means of semantic soft segmentation (initialisation and grouping)."""

import numpy as np


def seeded_kmeans(points, n_clusters, random_state=0, n_init=1, max_samples=None):
    """Seeded k-means++ (scikit-learn) on the rows of ``points``; returns the fitted model.

    With ``max_samples``, the centres are fitted on a seeded random subset of
    at most that many rows (its ``predict`` then labels any points).
    ``random_state`` may be an int, a ``RandomState`` or a
    ``numpy.random.Generator`` (scikit-learn takes no Generator, so one is
    turned into an int seed).
    """
    from sklearn.cluster import KMeans

    if isinstance(random_state, np.random.Generator):
        random_state = int(random_state.integers(2**31 - 1))
    rng = np.random.RandomState(random_state)
    if max_samples is not None and len(points) > max_samples:
        points = points[np.sort(rng.choice(len(points), max_samples, replace=False))]
    model = KMeans(n_clusters=n_clusters, init="k-means++", n_init=n_init, random_state=rng)
    return model.fit(points)


def kmeans_labels(points, n_clusters, random_state=0, n_init=1):
    """Labels of the rows of ``points`` by :func:`seeded_kmeans`."""
    return seeded_kmeans(points, n_clusters, random_state, n_init).labels_.astype(np.int64)
