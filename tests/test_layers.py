import numpy as np
import pytest

from unmix.image import read_image
from unmix.layers import Layers, composite, segment_palette


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


def test_colours_rgba_and_composite(photo):
    image = photo("coffee", (24, 32))
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(24, 32, 3)) * 3
    layers = Layers(np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True))
    with pytest.raises(ValueError, match="no colours"):
        layers.to_rgba()
    rgba = layers.to_rgba(image=image)  # estimates and stores the colours
    assert rgba.shape == (24, 32, 3, 4) and layers.colors.shape == (24, 32, 3, 3)
    np.testing.assert_array_equal(rgba[..., 3], layers.alphas)
    # All layers over any background recompose the image (up to the colour fit).
    everything = layers.composite(background=(1.0, 0.0, 0.0))
    assert np.abs(everything - (layers.alphas[..., None] * layers.colors).sum(axis=2)).max() < 1e-12
    # Merged layers: alpha adds up, colour is the alpha-weighted mean.
    merged = layers.to_rgba([0, 2])
    np.testing.assert_allclose(merged[..., 3], layers.alphas[..., [0, 2]].sum(axis=2))
    weighted = (layers.alphas[..., [0, 2], None] * layers.colors[:, :, [0, 2]]).sum(axis=2)
    np.testing.assert_allclose(merged[..., :3] * merged[..., 3:], weighted, atol=1e-12)
    background = photo("astronaut", (24, 32))
    np.testing.assert_allclose(
        composite(layers, [0, 2], background),
        composite(merged[..., :3], merged[..., 3], background), atol=1e-12)
    np.testing.assert_allclose(composite(merged, background=background),
                               composite(layers, [0, 2], background))
    with pytest.raises(ValueError, match="layers"):
        layers.to_rgba(5)


def test_composite_of_a_foreground():
    fg = np.full((4, 5, 3), 0.8)
    alpha = np.linspace(0, 1, 20).reshape(4, 5)
    out = composite(fg, alpha, 0.2)
    np.testing.assert_allclose(out, np.repeat((0.2 + 0.6 * alpha)[..., None], 3, axis=2))
    np.testing.assert_allclose(composite(fg, (alpha * 255).round().astype(np.uint8), 0.2), out,
                               atol=1 / 255)
    with pytest.raises(ValueError, match="alpha is required"):
        composite(fg)
    with pytest.raises(ValueError, match="shape"):
        composite(fg, alpha[:, :-1])
    with pytest.raises(ValueError, match="background"):
        composite(fg, alpha, np.zeros((2, 2, 3)))


def test_save_writes_rgba_layers_when_colours_are_known(layers, tmp_path):
    layers.colors = np.full(layers.alphas.shape + (3,), 0.5)
    paths = layers.save(tmp_path)
    names = [p.rsplit("/", 1)[1] for p in paths]
    assert names[-8:] == [f"{kind}-{k:02d}.png" for kind in ("layer", "overlay") for k in range(4)]
    import imageio.v3 as iio

    saved = iio.imread(paths[-5])
    assert saved.shape == (10, 12, 4)
    np.testing.assert_allclose(saved[..., 3] / 255, layers.alphas[..., 3], atol=0.5 / 255 + 1e-9)


def test_normal_blend_stack_composites_to_the_alpha_add_image(layers):
    """Blending the overlay stack bottom-up with the normal blend gives Σ α_k u_k."""
    rng = np.random.default_rng(3)
    layers.colors = rng.random(layers.alphas.shape + (3,))
    alphas = np.clip(layers.alphas, 0, 1)
    alphas /= alphas.sum(axis=2, keepdims=True)
    expected = (alphas[..., None] * layers.colors).sum(axis=2)
    stack = layers.to_rgba(blend="normal")
    out = np.zeros(expected.shape)
    for k in range(layers.n_layers):
        a = stack[:, :, k, 3:]
        out = a * stack[:, :, k, :3] + (1 - a) * out
    np.testing.assert_allclose(out, expected, atol=1e-12)
    with pytest.raises(ValueError, match="blend"):
        layers.to_rgba(blend="multiply")
    with pytest.raises(ValueError, match="whole stack"):
        layers.to_rgba(0, blend="normal")
