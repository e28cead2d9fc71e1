import numpy as np
import pytest

from unmix.spectral.grouping import group_segments, segment_mean_features


@pytest.fixture
def segments(photo):
    """Eight soft segments that sum to one: a softmax of smooth random fields."""
    image = photo("coffee", (24, 32))
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(24, 32, 8)).cumsum(axis=0).cumsum(axis=1) / 10
    alphas = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    return alphas, image


def test_injected_labels_sum_the_members(segments):
    alphas, features = segments
    labels = np.array([0, 2, 1, 2, 0, 3, 4, 4])
    grouped = group_segments(alphas, features, 5, group_labels=labels)
    for g in range(5):
        np.testing.assert_allclose(grouped[..., g], alphas[..., labels == g].sum(axis=2), atol=1e-15)
    np.testing.assert_allclose(grouped.sum(axis=2), 1.0, atol=1e-14)


def test_mean_features_against_a_loop(segments):
    alphas, features = segments
    means = segment_mean_features(alphas, features)
    for i in range(alphas.shape[2]):
        w = alphas[..., i]
        expected = (w[..., None] * features).sum(axis=(0, 1)) / w.sum()
        np.testing.assert_allclose(means[i], expected, rtol=1e-12)


def test_kmeans_finds_well_separated_groups():
    # ten hard segments whose features come in five clear pairs
    labels_image = np.repeat(np.arange(10), 6).reshape(6, 10)
    alphas = np.eye(10)[labels_image]
    centres = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    pair = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    features = np.repeat(centres[pair][labels_image][..., None], 3, axis=2)
    features += 0.001 * np.arange(10)[labels_image][..., None]  # distinct, but close in pairs
    grouped, labels = group_segments(alphas, features, 5, return_labels=True)
    for a, b in zip(range(0, 10, 2), range(1, 10, 2)):
        assert labels[a] == labels[b]
    assert len(set(labels)) == 5
    np.testing.assert_array_equal(grouped.sum(axis=2), 1.0)


def test_seeded_and_deterministic(segments):
    alphas, features = segments
    first = group_segments(alphas, features, 3, random_state=7, return_labels=True)[1]
    again = group_segments(alphas, features, 3, random_state=7, return_labels=True)[1]
    np.testing.assert_array_equal(first, again)
    generator = group_segments(alphas, features, 3, random_state=np.random.default_rng(7))
    assert generator.shape == (24, 32, 3)


def test_grouping_is_the_optimal_partition_for_any_seed(segments):
    """With its restarts, k-means finds the best of all 3-groupings of 8 segments (brute force)."""
    import itertools

    alphas, features = segments
    means = segment_mean_features(alphas, features)

    def inertia(labels):
        return sum(((means[labels == g] - means[labels == g].mean(axis=0)) ** 2).sum()
                   for g in np.unique(labels))

    best = min(inertia(np.array(labels)) for labels in itertools.product(range(3), repeat=8)
               if len(set(labels)) == 3)
    for seed in range(4):
        labels = group_segments(alphas, features, 3, random_state=seed, return_labels=True)[1]
        assert inertia(labels) == pytest.approx(best, rel=1e-12)


def test_bad_inputs(segments):
    alphas, features = segments
    with pytest.raises(ValueError, match="at least 9 segments"):
        group_segments(alphas, features, 9)
    with pytest.raises(ValueError, match="one per segment"):
        group_segments(alphas, features, 5, group_labels=[0, 1])
    with pytest.raises(ValueError, match=r"\[0, 4\]"):
        group_segments(alphas, features, 5, group_labels=np.arange(8))
    with pytest.raises(ValueError, match="shape"):
        group_segments(alphas[..., 0], features)
    with pytest.raises(ValueError, match="features must have shape"):
        group_segments(alphas, features[:5])
    with pytest.raises(ValueError, match="NaN"):
        group_segments(np.full_like(alphas, np.nan), features)
    zero = alphas.copy()
    zero[..., 3] = 0
    with pytest.raises(ValueError, match=r"\[3\] sum to zero"):
        group_segments(zero, features, 5)
