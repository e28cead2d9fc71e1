import math

import numpy as np
import pytest

from unmix.color.metrics import (
    alpha_sum_error,
    box_violation,
    color_variance,
    reconstruction_mse,
    soft_color_metrics,
    sparsity,
)
from unmix.layers import Layers


def test_hand_computed_2x2():
    alphas = np.array([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.25, 0.75]]])
    colors = np.zeros((2, 2, 2, 3))
    colors[..., 0, :] = [1.0, 0.0, 0.0]
    colors[..., 1, :] = [0.0, 0.0, 1.0]
    colors[1, 1, 1] = [0.0, 0.0, 0.6]
    layers = Layers(alphas, colors)
    image = np.einsum("yxk,yxkc->yxc", alphas, colors)
    image[0, 0, 1] = 0.2
    assert reconstruction_mse(image, layers) == pytest.approx(0.04 / 12)
    assert alpha_sum_error(layers) == (0.0, 0.0)
    # Pixel sparsities: 0, 1, 0, (1)/(0.625) − 1 = 0.6.
    assert sparsity(layers) == pytest.approx((0 + 1 + 0 + 0.6) / 4)
    # Layer 1: weights 0.5, 1, 0.75 on blue values 1, 1, 0.6; layer 0 constant.
    w, v = np.array([0.5, 1.0, 0.75]), np.array([1.0, 1.0, 0.6])
    mean = w @ v / w.sum()
    assert color_variance(layers) == pytest.approx((0 + w @ (v - mean) ** 2 / w.sum()) / 2)
    metrics = soft_color_metrics(image, layers)
    assert metrics["recon_psnr"] == pytest.approx(10 * math.log10(12 / 0.04))
    assert metrics["n_nonempty_layers"] == 2 and metrics["box_violation"] == 0


def test_hard_constant_layers_and_violations():
    alphas = np.zeros((4, 4, 3))
    alphas[:2, :, 0] = 1
    alphas[2:, :, 1] = 1
    colors = np.broadcast_to(np.eye(3), (4, 4, 3, 3)).copy()
    layers = Layers(alphas, colors)
    assert sparsity(layers) == 0
    with pytest.warns(UserWarning, match=r"layers \[2\] have no alpha"):
        assert color_variance(layers) == 0
    alphas[0, 0] = [-0.5, 1.5, 0.0]
    fraction, lowest = box_violation(Layers(alphas, colors))
    assert fraction == pytest.approx(2 / (48 + 144)) and lowest == -0.5
    with pytest.raises(ValueError, match="no colours"):
        reconstruction_mse(np.zeros((4, 4, 3)), Layers(alphas))
