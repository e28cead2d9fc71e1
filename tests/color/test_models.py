import numpy as np
import pytest

from unmix.color import ColorModels, estimate_color_models, representation_score
from unmix.color.models import PALETTE_VARIANCE


def test_three_flat_colours_are_recovered():
    # Stripes wider than the seed neighbourhood, of distinct grey levels (the
    # kernel that weights the neighbourhood is the grey guided filter's).
    truth = np.array([[0.9, 0.8, 0.7], [0.1, 0.5, 0.2], [0.5, 0.1, 0.6]])
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 24)[None].repeat(48, axis=0)
    image = np.clip(truth[labels] + rng.normal(0, 0.01, (48, 72, 3)), 0, 1)
    models = estimate_color_models(image)
    assert models.n_models == 3
    distance = np.linalg.norm(models.means[:, None] - truth[None], axis=2)
    assert np.all(distance.min(axis=0) < 0.02)
    assert np.all(representation_score(image, models) < 25)


def test_model_count(photo):
    image = photo("astronaut", (48, 48))
    automatic = estimate_color_models(image).n_models
    assert automatic >= 3 and estimate_color_models(image, n_models=2).n_models == 2


def test_projected_unmixing_score():
    models = ColorModels.from_palette([[0.2, 0.2, 0.2], [0.8, 0.6, 0.4], [0.1, 0.9, 0.1]])
    rng = np.random.default_rng(1)
    colors = rng.uniform(0, 1, (200, 3))
    for kind in ("marginal", "full3d"):
        score = representation_score(colors, models, projected_distance=kind)
        direct = models.squared_distances(colors).min(axis=1)
        assert np.all(score <= direct + 1e-12)
    # A colour on the segment between two means is represented at zero cost.
    mid = 0.3 * models.means[0] + 0.7 * models.means[1]
    assert representation_score(mid, models) == pytest.approx(0.0, abs=1e-20)
    # Far outside every slab and model: the plain Mahalanobis minimum.
    far = np.array([1.0, 0.0, 1.0])
    np.testing.assert_allclose(representation_score(far, models),
                               models.squared_distances(far).min())


def test_palette_and_bad_models():
    models = ColorModels.from_palette(np.array([[0, 0, 0], [255, 128, 0]], dtype=np.uint8))
    np.testing.assert_allclose(models.covariances[1], PALETTE_VARIANCE * np.eye(3))
    with pytest.raises(ValueError, match="same colour"):
        ColorModels.from_palette([[0.1, 0.2, 0.3], [0.5, 0.5, 0.5], [0.1, 0.2, 0.3]])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ColorModels.from_palette([[0.1, 0.2, 1.3], [0.5, 0.5, 0.5]])
    with pytest.raises(ValueError, match="at least 2"):
        ColorModels.from_palette([[0.1, 0.2, 0.3]])
    with pytest.raises(ValueError, match=r"shape \(K, 3\)"):
        ColorModels.from_palette([[0.1, 0.2], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"covariances\[1\] is singular"):
        ColorModels(np.array([[0.1, 0.2, 0.3], [0.5, 0.5, 0.5]]),
                    np.stack([np.eye(3), np.diag([1.0, 1.0, 0.0])]))
    with pytest.raises(ValueError, match="symmetric"):
        ColorModels(np.array([[0.1, 0.2, 0.3], [0.5, 0.5, 0.5]]),
                    np.stack([np.eye(3), np.eye(3) + np.triu(np.ones((3, 3)), 1)]))
    with pytest.raises(ValueError, match="n_models"):
        estimate_color_models(np.zeros((8, 8, 3)), n_models=1)
