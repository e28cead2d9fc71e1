"""Tests of unmix.matting.colors: K-layer colour estimation.

Oracles: pymatting's ``estimate_foreground_ml`` for K = 2 (the estimator this
one generalises), a straightforward per-pixel re-implementation of one
Gauss–Seidel sweep, and the reconstruction Σ_k α_k u_k = I.
"""

import doctest

import numpy as np
import pytest

from unmix.matting import colors, estimate_foreground, estimate_layer_colors


def _soft_layers(shape, k, seed=0):
    """K smooth soft layers summing to one (a softmax of blurred noise)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    logits = np.stack([gaussian_filter(rng.normal(size=shape), 4) * 40 for _ in range(k)], axis=2)
    e = np.exp(logits - logits.max(axis=2, keepdims=True))
    return e / e.sum(axis=2, keepdims=True)


def test_two_layers_equal_pymatting(photo):
    pymatting = pytest.importorskip("pymatting")
    image = photo("astronaut", (48, 64))
    alpha = _soft_layers((48, 64), 2)[:, :, 0]
    F, B = estimate_foreground(image, alpha, return_background=True)
    F_ref, B_ref = pymatting.estimate_foreground_ml(np.array(image), alpha, return_background=True)
    # pymatting works in float32.
    assert np.abs(F - F_ref).max() < 1e-4 and np.abs(B - B_ref).max() < 1e-4


def test_layers_reconstruct_the_image(photo):
    image = photo("coffee", (48, 64))
    alphas = _soft_layers((48, 64), 4)
    u = estimate_layer_colors(image, alphas)
    assert u.shape == (48, 64, 4, 3) and u.min() >= 0 and u.max() <= 1
    recomposed = (alphas[..., None] * u).sum(axis=2)
    assert np.abs(recomposed - image).mean() < 0.01
    # Where a layer is alone its colour is the image's.
    solid = alphas.max(axis=2) > 0.999
    winner = alphas.argmax(axis=2)
    assert np.abs(u[solid, winner[solid]] - image[solid]).max() < 0.02


def test_recovers_known_layer_colours():
    alphas = _soft_layers((32, 40), 3, seed=1)
    palette = np.array([[0.9, 0.1, 0.1], [0.1, 0.8, 0.2], [0.2, 0.3, 0.9]])
    image = alphas @ palette
    u = estimate_layer_colors(image, alphas)
    visible = alphas > 0.1
    for k in range(3):
        assert np.abs(u[visible[..., k], k] - palette[k]).max() < 0.02


def test_one_sweep_equals_a_direct_per_pixel_solve():
    rng = np.random.default_rng(2)
    image = rng.random((5, 6, 3))
    alphas = _soft_layers((5, 6), 3, seed=2)
    u = rng.random((5, 6, 3, 3))
    expected = u.copy()
    for y in range(5):
        for x in range(6):
            a = alphas[y, x]
            M = np.outer(a, a)
            r = a[:, None] * image[y, x][None]
            for dy, dx in ((0, -1), (0, 1), (-1, 0), (1, 0)):
                y2, x2 = min(max(y + dy, 0), 4), min(max(x + dx, 0), 5)
                w = 1e-5 + np.abs(a - alphas[y2, x2])
                M += np.diag(w)
                r += w[:, None] * expected[y2, x2]
            expected[y, x] = np.clip(np.linalg.solve(M, r), 0, 1)
    colors._sweeps(image, alphas, u, 1, 1e-5, 1.0)
    np.testing.assert_allclose(u, expected, atol=1e-10)


def test_soft_segments_are_clipped_and_renormalised(photo, caplog):
    image = photo("coffee", (24, 32))
    alphas = _soft_layers((24, 32), 3)
    noisy = alphas * 1.1 - 0.03
    with caplog.at_level("INFO", logger="unmix"):
        u = estimate_layer_colors(image, noisy)
    assert "renormalised" in caplog.text
    clipped = np.clip(noisy, 0, 1)
    np.testing.assert_allclose(
        u, estimate_layer_colors(image, clipped / clipped.sum(axis=2, keepdims=True)), atol=1e-12)


def test_bad_inputs(photo):
    image = photo("coffee", (16, 16))
    # One layer is the whole image: its colours are the image's.
    np.testing.assert_array_equal(estimate_layer_colors(image, np.ones((16, 16, 1)))[:, :, 0],
                                  image)
    with pytest.raises(TypeError, match="gradient_weight must be a real number, got None"):
        estimate_layer_colors(image, np.ones((16, 16, 2)) / 2, gradient_weight=None)
    with pytest.raises(TypeError, match="n_big_iterations must be an integer, got None"):
        estimate_layer_colors(image, np.ones((16, 16, 2)) / 2, n_big_iterations=None)
    with pytest.raises(TypeError, match="alphas must be a real numeric array, got dtype object"):
        estimate_layer_colors(image, (np.ones((16, 16, 2)) / 2).astype(object))
    with pytest.raises(ValueError, match="shape"):
        estimate_layer_colors(image, np.ones((16, 15, 2)) / 2)
    with pytest.raises(ValueError, match="regularization"):
        estimate_layer_colors(image, np.ones((16, 16, 2)) / 2, regularization=0)
    with pytest.raises(ValueError, match="alpha"):
        estimate_foreground(image, np.ones((16, 16, 2)))


def test_docstring_examples():
    assert doctest.testmod(colors).failed == 0
