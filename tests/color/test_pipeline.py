import numpy as np
import pytest

from unmix import soft_color_segments
from unmix.color import ColorModels, SoftColorSegmentationParams, soft_color_metrics
from unmix.layers import Layers


def test_synthetic_layers_are_recovered():
    truth = np.array([[0.85, 0.2, 0.1], [0.1, 0.6, 0.3], [0.2, 0.3, 0.9]])
    y, x = np.mgrid[:40, :60] / np.array([39.0, 59.0])[:, None, None]
    alphas = np.stack([np.clip(1.5 - 3 * x, 0, 1), np.zeros_like(x), np.clip(3 * x - 1.5, 0, 1)], 2)
    alphas[:, :, 1] = 1 - alphas[:, :, 0] - alphas[:, :, 2]
    image = alphas @ truth
    layers = soft_color_segments(image, palette=truth, keep_intermediates=True)
    assert isinstance(layers, Layers) and layers.alphas.shape == (40, 60, 3)
    # The sparsity term pulls the ramps' ends to pure layers (paper Fig. 2).
    assert np.abs(layers.intermediates["unmixed_alphas"] - alphas).mean() < 0.05
    assert np.abs(layers.alphas - alphas).mean() < 0.05
    metrics = soft_color_metrics(image, layers)
    assert metrics["recon_mse"] < 1e-20 and metrics["alpha_sum_error_max"] < 1e-12
    assert metrics["box_violation"] == 0


@pytest.mark.parametrize("method", ["fast", "mom"])
def test_photograph_end_to_end(photo, method):
    image = photo("coffee", (24, 32)) if method == "mom" else photo("astronaut", (64, 64))
    layers = soft_color_segments(image, method=method)
    assert layers.n_layers == len(layers.intermediates["models"]) >= 2
    np.testing.assert_allclose(layers.alphas.sum(axis=2), 1, atol=1e-12)
    assert soft_color_metrics(image, layers)["recon_mse"] < 1e-4


def test_arguments_are_checked(photo):
    image = photo("coffee", (12, 16))
    with pytest.raises(ValueError, match="at most one of"):
        soft_color_segments(image, n_layers=3, palette=[[0, 0, 0], [1, 1, 1]])
    with pytest.raises(ValueError, match="n_layers must be an integer >= 2"):
        soft_color_segments(image, n_layers=1)
    with pytest.raises(ValueError, match="method"):
        soft_color_segments(image, method="slow")
    with pytest.raises(TypeError, match="ColorModels"):
        soft_color_segments(image, models=np.eye(3))
    with pytest.raises(ValueError, match="sigma"):
        SoftColorSegmentationParams(sigma=-1)


def test_cli(tmp_path, capsys):
    from unmix.cli import _parse_palette, main

    assert main(["colors", "--example", "coffee", "--size", "24", "32", "-o", str(tmp_path),
                 "--palette", "30,15,5;200,120,80;240,240,230"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert {"layer-00.png", "overlay-02.png", "alpha-01.png", "models.npz"} <= set(names)
    assert "3 colour layers of 24×32" in capsys.readouterr().out
    np.testing.assert_allclose(_parse_palette("0,0.5,1;1,1,1"), [[0, 0.5, 1], [1, 1, 1]])
    with pytest.raises(ValueError, match="three values"):
        _parse_palette("1,2;3,4")
    assert isinstance(ColorModels.from_palette(_parse_palette("0,0,0;255,255,255")), ColorModels)
    assert main(["colors", "--example", "coffee", "--size", "24", "32", "-o", str(tmp_path),
                 "--palette", "1,2;3,4"]) == 2
