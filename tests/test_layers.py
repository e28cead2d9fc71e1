import numpy as np
import pytest

from unmix.image import read_image
from unmix.layers import Layers, segment_palette


@pytest.fixture
def layers():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(10, 12, 4))
    alphas = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    return Layers(alphas, intermediates={"note": 1})


def test_basic_properties(layers):
    assert layers.n_layers == len(layers) == 4 and layers.shape == (10, 12)
    assert "4 layers of 10×12" in repr(layers)


def test_visualize_is_the_palette_mix(layers):
    palette = segment_palette(4)
    np.testing.assert_allclose(layers.visualize(), layers.alphas @ palette, atol=1e-12)
    hard = Layers(np.eye(3)[np.array([[0, 1, 2]])])
    np.testing.assert_allclose(hard.visualize(np.eye(3))[0], np.eye(3))


def test_palette_is_distinct_for_many_layers():
    palette = segment_palette(25)
    assert palette.shape == (25, 3) and palette.min() >= 0 and palette.max() <= 1
    distances = np.linalg.norm(palette[:, None] - palette[None], axis=2) + np.eye(25)
    assert distances.min() > 0.05


def test_save_writes_16_bit_mattes(layers, tmp_path):
    paths = layers.save(tmp_path / "out")
    assert [p.rsplit("/", 1)[1] for p in paths] == [
        "alpha-00.png", "alpha-01.png", "alpha-02.png", "alpha-03.png", "segments.png"]
    np.testing.assert_allclose(read_image(paths[2])[..., 0], layers.alphas[..., 2], atol=1 / 65535)


def test_bad_inputs():
    with pytest.raises(ValueError, match="alphas"):
        Layers(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="colors"):
        Layers(np.zeros((4, 4, 2)), colors=np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="palette"):
        Layers(np.zeros((4, 4, 2))).visualize(np.zeros((3, 3)))
