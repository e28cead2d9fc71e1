import numpy as np
import pytest

from unmix.features import pca_features, preprocess_features
from unmix.filters import guided_filter


@pytest.fixture
def raw(photo):
    image = photo("coffee", (16, 20))
    rng = np.random.default_rng(0)
    # 8 channels: two guided triples plus two channels filtered with the colour guide;
    # large values exercise the ±5 clamp
    features = rng.normal(scale=4.0, size=(16, 20, 8))
    features[..., 0] += 10 * image[..., 0]
    return image, features


def test_preprocess_follows_the_released_steps(raw):
    image, features = raw
    clamped = np.clip(features, -5, 5)
    filtered = np.empty_like(clamped)
    for c in range(6):  # channel c guided by image channel c mod 3 (the pairing quirk)
        filtered[..., c] = guided_filter(clamped[..., c], image[..., c % 3], 10, 0.01)
    filtered[..., 6:] = guided_filter(clamped[..., 6:], image, 10, 0.01)
    X = filtered.reshape(-1, 8) - filtered.reshape(-1, 8).mean(axis=0)
    _, _, Vt = np.linalg.svd(X, full_matrices=False)
    projected = X @ Vt[:3].T
    expected = (projected - projected.min(axis=0)) / np.ptp(projected, axis=0)
    out = preprocess_features(features, image)
    assert out.shape == (16, 20, 3)
    # same channels up to the arbitrary sign of each principal axis
    for c in range(3):
        flat = out[..., c].ravel()
        assert min(np.abs(flat - expected[:, c]).max(), np.abs(flat - (1 - expected[:, c])).max()) < 1e-9
    np.testing.assert_array_equal(out.min(axis=(0, 1)), 0.0)
    np.testing.assert_array_equal(out.max(axis=(0, 1)), 1.0)


def test_pca_sign_convention_and_order():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(10, 12, 5)) * np.array([5.0, 1.0, 3.0, 0.1, 0.2])
    projected = pca_features(features, 3)
    variances = projected.reshape(-1, 3).var(axis=0)
    assert np.all(np.diff(variances) < 0)
    # the axes are orthonormal and each one's largest-magnitude loading is positive
    X = features.reshape(-1, 5) - features.reshape(-1, 5).mean(axis=0)
    V = np.linalg.lstsq(X, projected.reshape(-1, 3), rcond=None)[0]
    np.testing.assert_allclose(V.T @ V, np.eye(3), atol=1e-10)
    assert (V[np.argmax(np.abs(V), axis=0), np.arange(3)] > 0).all()


def test_constant_features_warn_and_give_zero(photo):
    image = photo("coffee", (16, 20))
    features = np.zeros((16, 20, 4))
    with pytest.warns(UserWarning, match="constant"):
        out = preprocess_features(features, image)
    assert np.isfinite(out).all() and (out == 0).all()


def test_bad_inputs(raw):
    image, features = raw
    with pytest.raises(ValueError, match="at least 3 channels"):
        preprocess_features(features[..., :2], image)
    with pytest.raises(ValueError, match="shape"):
        preprocess_features(features[:5], image)
    with pytest.raises(ValueError, match="NaN"):
        bad = features.copy()
        bad[3, 3, 3] = np.inf
        preprocess_features(bad, image)
    with pytest.raises(ValueError, match="clamp"):
        preprocess_features(features, image, clamp=0)
