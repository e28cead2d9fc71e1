import numpy as np
import pytest

from unmix.color import ColorModels, matte_radius, refine_colors, regularize_alphas
from unmix.color.unmixing import closed_form_colors
from unmix.filters import guided_filter


def brute_colour_guided(p, guide, radius, eps):
    """The colour guided filter written out per window: centred (2r+1)² windows, replicate borders."""
    height, width = p.shape
    a = np.zeros((height, width, 3))
    b = np.zeros((height, width))

    def window(y, x):
        rows = np.clip(np.arange(y - radius, y + radius + 1), 0, height - 1)
        cols = np.clip(np.arange(x - radius, x + radius + 1), 0, width - 1)
        return np.ix_(rows, cols)

    for y in range(height):
        for x in range(width):
            G = guide[window(y, x)].reshape(-1, 3)
            P = p[window(y, x)].ravel()
            mu, mp = G.mean(axis=0), P.mean()
            sigma = (G - mu).T @ (G - mu) / len(P)
            a[y, x] = np.linalg.solve(sigma + eps * np.eye(3), (G - mu).T @ (P - mp) / len(P))
            b[y, x] = mp - a[y, x] @ mu
    out = np.zeros((height, width))
    for y in range(height):
        for x in range(width):
            out[y, x] = a[window(y, x)].reshape(-1, 3).mean(axis=0) @ guide[y, x] \
                + b[window(y, x)].mean()
    return out


def test_matte_filter_against_brute_force(photo):
    image = photo("astronaut", (32, 32))
    alpha = np.random.default_rng(0).uniform(0, 1, (32, 32))
    np.testing.assert_allclose(guided_filter(alpha, image, 2 * 3 + 1, 1e-4),
                               brute_colour_guided(alpha, image, 3, 1e-4), atol=1e-10)


def test_regularized_alphas_are_a_partition(photo):
    image = photo("coffee", (32, 40))
    alphas = np.random.default_rng(1).dirichlet(np.ones(4), (32, 40))
    out, n_fallback = regularize_alphas(image, alphas, radius=2, return_fallback=True)
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose(out.sum(axis=2), 1, atol=1e-12)
    assert n_fallback == 0
    assert matte_radius((1000, 1500)) == 60 and matte_radius((40, 64)) == 2
    assert matte_radius((4, 4)) == 1
    with pytest.raises(ValueError, match="radius"):
        regularize_alphas(image, alphas, radius=0)
    with pytest.raises(ValueError, match=r"shape \(H, W, K\)"):
        regularize_alphas(image, alphas[:4])


def test_refinement(photo):
    image = photo("coffee", (8, 10))
    models = ColorModels.from_palette([[0.1, 0.05, 0.0], [0.8, 0.5, 0.3], [0.95, 0.95, 0.9]],
                                      variance=0.02)
    target = np.random.default_rng(2).dirichlet(np.ones(3), (8, 10))
    alphas, colors = refine_colors(image, models, target)
    np.testing.assert_array_equal(alphas, target)
    np.testing.assert_array_equal(colors, closed_form_colors(image, models, target))
    mom_alphas, mom_colors = refine_colors(image, models, target, method="mom",
                                           initial_colors=colors)
    np.testing.assert_array_equal(mom_alphas, target)
    exact = np.all((closed_form_colors(image, models, target, clip=False) >= 0)
                   & (closed_form_colors(image, models, target, clip=False) <= 1), axis=(2, 3))
    np.testing.assert_allclose(mom_colors[exact], colors[exact], atol=1e-4)
