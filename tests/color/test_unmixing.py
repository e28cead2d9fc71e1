import warnings

import numpy as np
import pytest
from scipy.optimize import minimize

from unmix.color import ColorModels, estimate_color_models
from unmix.color.unmixing import (
    _LAGRANGIAN,
    _REDUCED,
    _newton_direction,
    _objective,
    closed_form_colors,
    initial_solution,
    sparse_color_unmixing,
    unmixing_energy,
)
from unmix.exceptions import ConvergenceWarning


def _models(seed=0, k=4):
    rng = np.random.default_rng(seed)
    means = rng.uniform(0.1, 0.9, (k, 3))
    factors = rng.normal(0, 0.08, (k, 3, 3))
    covs = factors @ factors.transpose(0, 2, 1) + 2e-3 * np.eye(3)
    return ColorModels(means, covs)


def _mixture_pixels(models, n=200, seed=1):
    """Pixels made of two layers near their models' means: a known 2-layer mixture."""
    rng = np.random.default_rng(seed)
    pairs = rng.integers(0, models.n_models, (n, 2))
    t = rng.uniform(0, 1, n)[:, None]
    u0 = models.means[pairs[:, 0]] + rng.normal(0, 0.01, (n, 3))
    u1 = models.means[pairs[:, 1]] + rng.normal(0, 0.01, (n, 3))
    return np.clip(t * u0 + (1 - t) * u1, 0, 1)


@pytest.fixture(scope="module")
def photo_models():
    from unmix.image import example_image

    image = example_image("astronaut", (48, 48))
    return image, estimate_color_models(image)


def test_closed_form_colors_match_constrained_solver():
    models = _models()
    rng = np.random.default_rng(3)
    c = rng.uniform(0.3, 0.7, 3)
    alphas = rng.dirichlet(np.ones(models.n_models))
    u = closed_form_colors(c, models, alphas, clip=False)

    def cost(x):
        return unmixing_energy(c, models, alphas, x.reshape(-1, 3), sigma=0.0)

    constraint = {"type": "eq", "fun": lambda x: alphas @ x.reshape(-1, 3) - c}
    ref = minimize(cost, np.repeat(c[None], models.n_models, 0).ravel(), method="SLSQP",
                   constraints=[constraint], options={"ftol": 1e-15, "maxiter": 500})
    np.testing.assert_allclose(u.ravel(), ref.x, atol=1e-6)
    np.testing.assert_allclose(alphas @ u, c, atol=1e-12)
    # The reduced energy rᵀM⁻¹r equals Σ α_i D_i(u_i*) (spec §5.2).
    g = np.zeros(models.n_models)
    data = (c, models.means, models.covariances, np.empty((0, 3, 3)), 0.0, np.empty(0), 0.0,
            False, np.empty(0))
    reduced = _objective(_REDUCED, alphas.copy(), g, data)
    assert reduced == pytest.approx(float(cost(u.ravel())), rel=1e-12)


@pytest.mark.parametrize("kind", [_REDUCED, _LAGRANGIAN])
def test_objective_gradients_by_finite_differences(kind):
    models = _models(seed=2, k=3)
    rng = np.random.default_rng(4)
    c = rng.uniform(0.2, 0.8, 3)
    k = models.n_models
    if kind == _REDUCED:
        x = rng.dirichlet(np.ones(k))
        data = (c, models.means, models.covariances, np.empty((0, 3, 3)), 10.0, np.empty(0), 0.0,
                False, np.empty(0))
    else:
        x = rng.uniform(0.1, 0.9, 4 * k)
        data = (c, models.means, np.empty((0, 3, 3)), models.precisions, 10.0,
                np.array([0.3, -0.2, 0.1, 0.5]), 2.0, False, np.empty(4))
    grad = np.zeros_like(x)
    _objective(kind, x, grad, data)
    numeric = np.zeros_like(x)
    for i in range(x.size):
        step = np.zeros_like(x)
        step[i] = 1e-6
        numeric[i] = (_objective(kind, x + step, np.zeros_like(x), data)
                      - _objective(kind, x - step, np.zeros_like(x), data)) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["fast", "mom"])
def test_known_mixture_meets_constraints_and_lowers_energy(method):
    models = _models()
    pixels = _mixture_pixels(models, n=120)
    a0, u0 = initial_solution(pixels, models)
    alphas, colors, info = sparse_color_unmixing(pixels, models, method=method, return_info=True)
    np.testing.assert_allclose(alphas.sum(axis=1), 1, atol=1e-6)
    assert alphas.min() >= 0 and alphas.max() <= 1 and colors.min() >= 0 and colors.max() <= 1
    lower = info["energy"] <= unmixing_energy(pixels, models, a0, u0) + 1e-6
    unclipped = closed_form_colors(pixels, models, alphas, clip=False)
    inside = np.all((unclipped >= 0) & (unclipped <= 1), axis=(1, 2))
    if method == "mom":
        # The augmented Lagrangian of a non-convex energy may settle above its start.
        assert info["color_violation"].max() < 1e-6 and lower.mean() > 0.9
    else:  # the box repair may raise the energy where the closed form leaves the box
        assert info["color_violation"].max() < 1e-12 and inside.mean() > 0.5
        assert np.all(lower[inside])


def test_fast_agrees_with_mom_on_photograph(photo_models):
    image, models = photo_models
    crop = image[8:24, 8:24]
    fast_a, fast_u, fast = sparse_color_unmixing(crop, models, return_info=True)
    mom_a, mom_u, mom = sparse_color_unmixing(crop, models, method="mom", return_info=True)
    # Where both meet the colour constraint, compare energies: the non-convex
    # problem may have several minima, the reduced solver finds one as low.
    assert fast["color_violation"].max() < 1e-12 and mom["color_violation"].max() < 1e-6
    assert np.mean(fast["energy"] <= mom["energy"] + 1e-6) > 0.7
    assert np.median(np.abs(fast_a - mom_a)) < 1e-6


def test_image_shapes_and_warning_at_iteration_limit(photo):
    image = photo("coffee", (12, 16))
    models = ColorModels.from_palette([[0.1, 0.05, 0.0], [0.8, 0.5, 0.3], [1.0, 1.0, 0.9]])
    alphas, colors = sparse_color_unmixing(image, models)
    assert alphas.shape == (12, 16, 3) and colors.shape == (12, 16, 3, 3)
    with pytest.warns(ConvergenceWarning, match="iteration limit"):
        sparse_color_unmixing(image, models, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sparse_color_unmixing(image[:2, :2], models)


def test_bad_inputs():
    models = _models()
    with pytest.raises(ValueError, match="method must be"):
        sparse_color_unmixing(np.zeros((2, 3)), models, method="lbfgs")
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        sparse_color_unmixing(np.full((2, 3), 1.5), models)
    with pytest.raises(TypeError, match="ColorModels"):
        sparse_color_unmixing(np.zeros((2, 3)), models.means)
    with pytest.raises(ValueError, match="non-negative"):
        closed_form_colors(np.zeros((1, 3)), models, np.zeros((1, 4)))


@pytest.mark.parametrize("sigma", [0.01, 10.0])
def test_newton_direction_on_a_face(sigma):
    # The face {α_1 = 0}: the Newton system with the finite-difference Hessian,
    # Σ z = 0 kept by eliminating the largest alpha (spec §5.2's G).
    models = _models(seed=0, k=5)
    rng = np.random.default_rng(0)
    c = rng.uniform(0.2, 0.8, 3)
    k = models.n_models
    x = rng.dirichlet(np.ones(k))
    x[1] = 0.0
    x /= x.sum()
    data = (c, models.means, models.covariances, np.empty((0, 3, 3)), sigma, np.empty(0), 0.0,
            False, np.empty(0))

    def gradient(a):
        g = np.zeros(k)
        _objective(_REDUCED, a.copy(), g, data)
        return g

    hessian = np.column_stack([(gradient(x + h) - gradient(x - h)) / 2e-6
                               for h in 1e-6 * np.eye(k)])
    free = np.flatnonzero(x > 0)
    pivot = free[np.argmax(x[free])]
    others = free[free != pivot]
    basis = np.zeros((k, others.size))
    basis[others, np.arange(others.size)] = 1.0
    basis[pivot] = -1.0
    reduced = basis.T @ hessian @ basis
    z = np.zeros(k)
    found = _newton_direction(x, gradient(x), data, z, np.empty((k, k + 10)))
    assert found == bool(np.all(np.linalg.eigvalsh(reduced) > 0))
    if found:
        expected = basis @ np.linalg.solve(reduced, -basis.T @ gradient(x))
        np.testing.assert_allclose(z, expected, rtol=1e-5, atol=1e-7 * np.abs(expected).max())
