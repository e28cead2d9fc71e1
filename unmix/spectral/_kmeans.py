"""The one k-means of semantic soft segmentation (initialisation and grouping)."""

import numpy as np


def kmeans_labels(points, n_clusters, random_state=0, n_init=1):
    """Labels of the rows of ``points`` by seeded k-means++ (scikit-learn).

    ``random_state`` may be an int, a ``RandomState`` or a ``numpy.random.Generator``
    (scikit-learn takes no Generator, so one is turned into an int seed).
    """
    from sklearn.cluster import KMeans

    if isinstance(random_state, np.random.Generator):
        random_state = int(random_state.integers(2**31 - 1))
    model = KMeans(n_clusters=n_clusters, init="k-means++", n_init=n_init,
                   random_state=random_state)
    return model.fit_predict(points).astype(np.int64)
