import math

import numpy as np
import pytest

from unmix.graph import Superpixels, color_affinity, semantic_affinity, superpixels


def dense_reference(sp, means, pairs, weight):
    """Add weight(mean_s, mean_t) between centroid pixels, pair by pair."""
    n = sp.labels.size
    W = np.zeros((n, n))
    for s, t in pairs:
        w = weight(means[s], means[t], s, t)
        W[sp.centroid_index[s], sp.centroid_index[t]] += w
        W[sp.centroid_index[t], sp.centroid_index[s]] += w
    return W


@pytest.fixture
def scene(photo):
    image = photo("coffee", (36, 48))
    return image, superpixels(image, n_segments=40)


def test_semantic_affinity_matches_pairwise_loop(scene):
    image, sp = scene
    features = np.ascontiguousarray(image[..., ::-1])  # any 3-channel features
    W = semantic_affinity(features, sp)
    means = sp.mean(features)

    def weight(a, b, s, t):
        return math.erf(20 * (0.15 - math.dist(a, b)))

    expected = dense_reference(sp, means, map(tuple, sp.adjacency), weight)
    np.testing.assert_allclose(W.toarray(), expected, atol=1e-15)
    assert (W != W.T).nnz == 0
    assert W.min() < 0 < W.max()  # coffee has similar and dissimilar neighbours


def test_color_affinity_matches_pairwise_loop(scene):
    image, sp = scene
    W = color_affinity(image, sp)
    means = sp.mean(image)
    height, width = sp.shape

    def weight(a, b, s, t):
        (rs, cs), (rt, ct) = sp.centroids[s] + 1, sp.centroids[t] + 1
        if math.hypot(rs / height - rt / height, cs / width - ct / width) > 0.2:
            return 0.0
        return (math.erf(50 * (0.05 - math.dist(a, b))) + 1) / 2

    all_pairs = [(s, t) for s in range(sp.n_segments) for t in range(s + 1, sp.n_segments)]
    expected = dense_reference(sp, means, all_pairs, weight)
    np.testing.assert_allclose(W.toarray(), expected, atol=1e-15)
    assert W.nnz > 0 and W.min() >= 0 and (W != W.T).nnz == 0


def two_region_scene(colour_gap):
    """Two 6×6 superpixels side by side whose colours differ by colour_gap."""
    labels = np.zeros((6, 12), dtype=int)
    labels[:, 6:] = 1
    image = np.full((6, 12, 3), 0.5)
    image[:, 6:, 0] += colour_gap
    return image, Superpixels.from_labels(labels)


@pytest.mark.parametrize(
    "gap, expected", [(0.0, math.erf(3.0)), (0.1, math.erf(1.0)), (0.15, 0.0), (0.2, -math.erf(1.0))]
)
def test_semantic_sample_values(gap, expected):
    image, sp = two_region_scene(gap)
    W = semantic_affinity(image, sp)
    assert W[sp.centroid_index[0], sp.centroid_index[1]] == pytest.approx(expected, abs=1e-12)


def test_paper_threshold_moves_the_sign_change():
    image, sp = two_region_scene(0.15)
    W = semantic_affinity(image, sp, threshold=0.2)
    assert W[sp.centroid_index[0], sp.centroid_index[1]] == pytest.approx(math.erf(1.0))


@pytest.mark.parametrize(
    "gap, expected", [(0.0, (math.erf(2.5) + 1) / 2), (0.05, 0.5), (0.1, (math.erf(-2.5) + 1) / 2)]
)
def test_color_sample_values(gap, expected):
    # The two centroids are 6/12 = 0.5 apart horizontally: outside radius 0.2,
    # so use a radius that includes them.
    image, sp = two_region_scene(gap)
    assert color_affinity(image, sp).nnz == 0
    W = color_affinity(image, sp, radius=0.6)
    assert W[sp.centroid_index[0], sp.centroid_index[1]] == pytest.approx(expected, rel=1e-12)


def test_shared_centroid_pixels_are_summed():
    # A ring around a centre square: both have their centroid at the same pixel.
    labels = np.zeros((5, 5), dtype=int)
    labels[1:4, 1:4] = 1
    labels[2, 2] = 2
    sp = Superpixels.from_labels(labels)
    assert sp.centroid_index[0] == sp.centroid_index[1] == sp.centroid_index[2]
    image = np.full((5, 5, 3), 0.3)
    W = semantic_affinity(image, sp)
    # two adjacent pairs (outer-middle, middle-centre), each erf(20 * 0.15),
    # both summed twice onto the one shared diagonal entry
    np.testing.assert_array_equal(sp.adjacency, [[0, 1], [1, 2]])
    assert W.nnz == 1 and W.sum() == pytest.approx(4 * math.erf(3.0))


def test_bad_inputs(scene):
    image, sp = scene
    with pytest.raises(ValueError, match="shape"):
        semantic_affinity(np.zeros((5, 5, 3)), sp)
    with pytest.raises(ValueError, match="NaN"):
        bad = image.copy()
        bad[0, 0, 0] = np.nan
        semantic_affinity(bad, sp)
    with pytest.raises(TypeError, match="Superpixels"):
        color_affinity(image, sp.labels)
    with pytest.raises(ValueError, match="radius"):
        color_affinity(image, sp, radius=0)
    with pytest.raises(ValueError, match="steepness"):
        semantic_affinity(image, sp, steepness=-1)
    with pytest.raises(TypeError, match="numeric"):
        semantic_affinity(np.full(image.shape, "x"), sp)
