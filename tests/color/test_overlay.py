import numpy as np
import pytest

from unmix.color import from_overlay, to_overlay


def _normal_blend(opacities, colors):
    out = np.zeros(colors.shape[:-2] + (3,))
    for i in range(opacities.shape[-1]):
        a = opacities[..., i, None]
        out = a * colors[..., i, :] + (1 - a) * out
    return out


def test_round_trip_is_exact_and_composites_agree():
    rng = np.random.default_rng(0)
    alphas = rng.dirichlet(np.full(5, 0.3), (20, 30))
    alphas[0, 0] = [0, 0, 1, 0, 0]  # empty bottom layers
    colors = rng.uniform(0, 1, (20, 30, 5, 3))
    opacities = to_overlay(alphas)
    assert np.all(opacities[..., 0] == 1) and opacities.min() >= 0 and opacities.max() <= 1
    np.testing.assert_allclose(from_overlay(opacities), alphas, atol=1e-15)
    np.testing.assert_allclose(_normal_blend(opacities, colors),
                               np.einsum("yxk,yxkc->yxc", alphas, colors), atol=1e-14)


def test_negative_alphas_are_refused():
    with pytest.raises(ValueError, match="clip and renormalise"):
        to_overlay(np.array([[-0.1, 1.1]]))
