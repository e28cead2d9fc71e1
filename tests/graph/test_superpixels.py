import itertools

import numpy as np
import pytest

from unmix.graph import Superpixels, superpixels


def slow_adjacency(labels):
    """Every 8-neighbour pixel pair, one by one."""
    height, width = labels.shape
    pairs = set()
    for y, x in itertools.product(range(height), range(width)):
        for dy, dx in itertools.product((-1, 0, 1), repeat=2):
            v, u = y + dy, x + dx
            if 0 <= v < height and 0 <= u < width and labels[y, x] != labels[v, u]:
                a, b = sorted((labels[y, x], labels[v, u]))
                pairs.add((a, b))
    return np.array(sorted(pairs)).reshape(-1, 2)


def test_from_labels_relabels_and_rounds_half_away_from_zero():
    # Label 7 spans rows 0..1 and columns 0..2: centroid (0.5, 1.0) -> (1, 1);
    # label -3 spans rows 0..1, columns 3..4: centroid (0.5, 3.5) -> (1, 4).
    labels = np.array([[7, 7, 7, -3, -3], [7, 7, 7, -3, -3], [9, 9, 9, 9, 9]])
    sp = Superpixels.from_labels(labels)
    np.testing.assert_array_equal(np.unique(sp.labels), [0, 1, 2])
    # relabelling keeps the order of the original values: -3 -> 0, 7 -> 1, 9 -> 2
    np.testing.assert_array_equal(sp.labels[0], [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(sp.counts, [4, 6, 5])
    np.testing.assert_array_equal(sp.centroids, [[1, 4], [1, 1], [2, 2]])
    np.testing.assert_array_equal(sp.centroid_index, [1 * 5 + 4, 1 * 5 + 1, 2 * 5 + 2])
    np.testing.assert_array_equal(sp.adjacency, [[0, 1], [0, 2], [1, 2]])


def test_diagonal_contact_counts_as_adjacent():
    labels = np.array([[0, 1], [2, 0]])
    sp = Superpixels.from_labels(labels)
    np.testing.assert_array_equal(sp.adjacency, [[0, 1], [0, 2], [1, 2]])


def test_slic_on_photograph(photo):
    image = photo("coffee", (60, 80))
    sp = superpixels(image, n_segments=50)
    assert sp.labels.shape == (60, 80)
    assert 25 <= sp.n_segments <= 100
    np.testing.assert_array_equal(np.unique(sp.labels), np.arange(sp.n_segments))
    np.testing.assert_array_equal(sp.adjacency, slow_adjacency(sp.labels))
    # centroids are the rounded mean coordinates
    rows, cols = np.indices(sp.shape)
    for label in range(sp.n_segments):
        mask = sp.labels == label
        expected = np.floor([rows[mask].mean() + 0.5, cols[mask].mean() + 0.5])
        np.testing.assert_array_equal(sp.centroids[label], expected)
    # deterministic
    np.testing.assert_array_equal(superpixels(image, n_segments=50).labels, sp.labels)


def test_mean(photo):
    image = photo("chelsea", (30, 40))
    sp = superpixels(image, n_segments=20)
    means = sp.mean(image)
    assert means.shape == (sp.n_segments, 3)
    np.testing.assert_allclose(means[3], image[sp.labels == 3].mean(axis=0))
    np.testing.assert_allclose(sp.mean(image[..., 0]), means[:, 0])
    with pytest.raises(ValueError, match="shape"):
        sp.mean(image[:10])


def test_bad_inputs(photo):
    with pytest.raises(ValueError, match="2-D"):
        Superpixels.from_labels(np.zeros((3, 3, 3), dtype=int))
    with pytest.raises(TypeError, match="integer"):
        Superpixels.from_labels(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="empty"):
        Superpixels.from_labels(np.zeros((0, 3), dtype=int))
    image = photo()
    with pytest.raises(ValueError, match="n_segments"):
        superpixels(image, n_segments=0)
    with pytest.raises(ValueError, match="compactness"):
        superpixels(image, compactness=np.nan)
    with pytest.raises(ValueError, match="NaN"):
        superpixels(np.full((10, 10, 3), np.nan))
