"""FSCS: architecture against the released state_dict layout, loading, inference, regression."""

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest

import unmix
from unmix.filters import guided_filter
from unmix.metrics import soft_color_metrics

torch = pytest.importorskip("torch")

from unmix.nets.fscs import (  # noqa: E402
    FSCS,
    AlphaPredictor,
    ResiduePredictor,
    fscs_guided_filter,
    fscs_segments,
    kmeans_palette,
    load_fscs,
)

#: The authors' weights and outputs, beside the repository (never copied into it).
FSCS_DATA = Path(unmix.__file__).resolve().parents[2] / "shared" / "fscs"
APPLE_PALETTE = np.array([[253, 253, 254], [203, 194, 170], [83, 17, 22], [205, 118, 4],
                          [220, 222, 11], [155, 24, 10], [171, 75, 67]], dtype=np.uint8)
needs_weights = pytest.mark.skipif(not (FSCS_DATA / "mask_generator.pth").is_file(),
                                   reason=f"the released FSCS files are not in {FSCS_DATA}")


def _released_shapes(d, out):
    """Spec fscs.md §3: the released state_dict of a U-Net of input width d."""
    shapes = {"conv1.weight": (2 * d, d, 3, 3), "conv2.weight": (4 * d, 2 * d, 3, 3),
              "conv3.weight": (8 * d, 4 * d, 3, 3), "deconv1.weight": (8 * d, 4 * d, 3, 3),
              "deconv2.weight": (8 * d, 2 * d, 3, 3), "deconv3.weight": (4 * d, 2 * d, 3, 3),
              "conv4.weight": (d, 2 * d + 3, 3, 3), "conv4.bias": (d,),
              "conv5.weight": (out, d, 3, 3), "conv5.bias": (out,)}
    for bn, width in (("bn1", 2 * d), ("bn2", 4 * d), ("bn3", 8 * d), ("bnde1", 4 * d),
                      ("bnde2", 2 * d), ("bnde3", 2 * d), ("bn4", d)):
        for field in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{bn}.{field}"] = (width,)
        shapes[f"{bn}.num_batches_tracked"] = ()
    return shapes


@pytest.mark.parametrize("cls, d, out, n_params", [(AlphaPredictor, 24, 7, 521_695),
                                                   (ResiduePredictor, 31, 21, 873_074)])
def test_state_dict_layout_is_the_released_one(cls, d, out, n_params):
    net = cls(7)
    shapes = {key: tuple(value.shape) for key, value in net.state_dict().items()}
    assert shapes == _released_shapes(d, out) and len(shapes) == 45
    assert sum(p.numel() for p in net.parameters()) == n_params


def _random_fscs(n_layers=2, seed=0):
    torch.manual_seed(seed)
    nets = FSCS(n_layers)
    for module in nets.modules():  # non-trivial running statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return nets.eval()


def _save_pair(tmp_path, nets):
    mask, residue = tmp_path / "mask_generator.pth", tmp_path / "residue_predictor.pth"
    torch.save(nets.alpha_predictor.state_dict(), mask)
    torch.save(nets.residue_predictor.state_dict(), residue)
    return mask, residue


def test_load_round_trip_infers_k(tmp_path):
    nets = _random_fscs(3)
    mask, residue = _save_pair(tmp_path, nets)
    loaded = load_fscs(mask, residue, device="cpu")
    assert loaded.n_layers == 3 and not loaded.training
    for key, value in nets.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    assert load_fscs(tmp_path, device="cpu").n_layers == 3  # a directory of both files


def test_load_errors_name_keys_and_shapes(tmp_path):
    nets = _random_fscs(2)
    mask, residue = _save_pair(tmp_path, nets)
    # Residue weights (K = 2: 3K = 6 outputs, read as K = 6) into the alpha predictor.
    with pytest.raises(ValueError, match=r"does not fit AlphaPredictor: conv1.weight: "
                                         r"\(22, 11, 3, 3\) in the file, \(42, 21, 3, 3\) "
                                         r"expected; .* and 32 more tensors of other shapes$"):
        load_fscs(residue, residue, device="cpu")
    state = nets.alpha_predictor.state_dict()
    state.pop("bn4.running_var")
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match=r"missing keys \['bn4.running_var'\]; "
                                         r"unexpected keys \['extra.weight'\]"):
        load_fscs(tmp_path / "broken.pth", residue, device="cpu")
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        load_fscs(tmp_path / "nothing.pth", residue)
    with pytest.raises(ValueError, match="residue_path is required"):
        load_fscs(mask)


class _Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_load_is_weights_only(tmp_path):
    nets = _random_fscs(2)
    mask, residue = _save_pair(tmp_path, nets)
    torch.save({"conv1.weight": _Payload()}, tmp_path / "evil.pth")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_fscs(tmp_path / "evil.pth", residue, device="cpu")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(TypeError, match="must hold a state_dict"):
        load_fscs(mask, tmp_path / "list.pth", device="cpu")


def test_guided_filter_matches_brute_force_and_unmix_filters(photo):
    image = photo("coffee", (24, 30))
    grey = image @ np.array([0.299, 0.587, 0.114])
    src = np.stack([image[:, :, 0] ** 2, np.sin(6 * image[:, :, 1])], axis=2)
    ours = fscs_guided_filter(torch.from_numpy(grey)[None, None],
                              torch.from_numpy(src.transpose(2, 0, 1))[None], 3, 1e-3)
    ours = ours[0].numpy().transpose(1, 2, 0)
    h, w = grey.shape

    def window_mean(x):  # means over windows truncated at the border
        out = np.empty_like(x)
        for y in range(h):
            for x0 in range(w):
                out[y, x0] = x[max(y - 3, 0):y + 4, max(x0 - 3, 0):x0 + 4].mean(axis=(0, 1))
        return out

    g3 = grey[:, :, None]
    a = (window_mean(g3 * src) - window_mean(g3) * window_mean(src)) / (
        window_mean(g3 * g3) - window_mean(g3) ** 2 + 1e-3)
    b = window_mean(src) - a * window_mean(g3)
    np.testing.assert_allclose(ours, window_mean(a) * g3 + window_mean(b), atol=1e-12)
    # Away from the border (2r pixels), truncated and replicate windows agree.
    np.testing.assert_allclose(ours[6:-6, 6:-6], guided_filter(src, grey, 7, 1e-3)[6:-6, 6:-6],
                               atol=1e-12)


def test_pad_and_crop(photo):
    nets = _random_fscs(2)
    image = photo("chelsea", (30, 45))
    palette = [[0.2, 0.3, 0.4], [0.9, 0.8, 0.7]]
    padded = fscs_segments(image, palette, nets=nets)
    assert padded.alphas.shape == (30, 45, 2) and padded.colors.shape == (30, 45, 2, 3)
    assert padded.intermediates["shape"] == (32, 48)
    np.testing.assert_allclose(padded.alphas.sum(axis=2), 1, atol=1e-6)
    assert padded.colors.min() >= 0 and padded.colors.max() <= 1
    cropped = fscs_segments(image, palette, nets=nets, fit="crop")
    assert cropped.alphas.shape == (24, 40, 2) and cropped.intermediates["shape"] == (24, 40)
    np.testing.assert_array_equal(cropped.intermediates["image"], image[:24, :40])
    # Padding changes the residue centring slightly, not the alphas' nature.
    assert np.abs(padded.alphas[:24, :40] - cropped.alphas).mean() < 0.05
    with pytest.raises(ValueError, match="fit must be 'pad' or 'crop', got 'tile'"):
        fscs_segments(image, palette, nets=nets, fit="tile")


def test_modes_and_mask_operation(photo):
    nets = _random_fscs(3)
    image = photo("coffee", (24, 32))
    palette = np.array([[30, 20, 10], [200, 120, 60], [240, 240, 230]], dtype=np.uint8)
    x = torch.tensor(image.transpose(2, 0, 1), dtype=torch.float32)[None]
    raw = nets.predict_alphas(x, torch.from_numpy(palette / 255.0)).detach()
    layers = {mode: fscs_segments(image, palette, nets=nets, mode=mode)
              for mode in ("default", "upstream_fp32", "clean", "no_filter")}
    np.testing.assert_allclose(layers["no_filter"].alphas, raw[0].permute(1, 2, 0), atol=1e-6)
    assert layers["clean"].alphas.min() >= 0 and layers["clean"].alphas.max() <= 1
    assert np.abs(layers["upstream_fp32"].alphas - layers["default"].alphas).mean() < 1e-3
    mask = np.zeros((24, 32), dtype=bool)
    mask[:, :16] = True
    merged = fscs_segments(image, palette, nets=nets, mode="no_filter", mask_op=(0, 2, mask))
    total = layers["no_filter"].alphas[:, :, 0] + layers["no_filter"].alphas[:, :, 2]
    np.testing.assert_allclose(merged.alphas[:, :, 0], total * mask, atol=1e-6)
    np.testing.assert_allclose(merged.alphas[:, :, 2], total * ~mask, atol=1e-6)
    with pytest.raises(ValueError, match="mode must be one of"):
        fscs_segments(image, palette, nets=nets, mode="fast")


def test_palette_checks_and_kmeans(photo):
    nets = _random_fscs(2)
    image = photo("coffee", (24, 32))
    with pytest.raises(ValueError, match="palette must have K = 2 colours"):
        fscs_segments(image, [[0.1, 0.2, 0.3]], nets=nets)
    with pytest.raises(ValueError, match=r"floats in \[0, 1\] or integers"):
        fscs_segments(image, [[0.1, 0.2, 3.0], [0, 0, 0.5]], nets=nets)
    with pytest.raises(ValueError, match="n_layers must equal the networks' K = 2"):
        fscs_segments(image, nets=nets, n_layers=7)
    with pytest.raises(TypeError, match="nets must be an FSCS"):
        fscs_segments(image, nets=object())
    palette = kmeans_palette(image, 4, random_state=1)
    assert palette.shape == (4, 3)
    np.testing.assert_allclose(palette * 255, np.round(palette * 255), atol=1e-9)  # truncated
    np.testing.assert_array_equal(palette, kmeans_palette(image, 4, random_state=1))
    auto = fscs_segments(image, nets=nets, random_state=3)
    np.testing.assert_array_equal(auto.intermediates["palette"], kmeans_palette(image, 2, 3))


@pytest.fixture(scope="module")
def apple():
    from unmix.image import read_image

    nets = load_fscs(FSCS_DATA, device="cpu")
    image = read_image(FSCS_DATA / "apple.jpg")
    return fscs_segments(image, APPLE_PALETTE, nets=nets, fit="crop")


@needs_weights
def test_released_files_are_the_expected_ones():
    digests = {"mask_generator.pth": "92c911b9a70c91c06eaa66828fc28b6df275b1aabc9e4ec12c46a7ee00776610",
               "residue_predictor.pth":
                   "4a0f520a6db56fb6e9bd9655e1cc702d781bd2bd873450fca8d457c382d7b6ae"}
    for name, digest in digests.items():
        assert hashlib.sha256((FSCS_DATA / name).read_bytes()).hexdigest() == digest


@needs_weights
def test_apple_regression_against_the_authors_outputs(apple):
    """Spec fscs.md §8: the shipped layer PNGs and the default mode's metrics."""
    import imageio.v3 as iio

    from unmix.image import read_image

    assert apple.shape == (816, 896)
    for k in range(7):
        reference = iio.imread(FSCS_DATA / "reference_apple" / f"layer-0{k}.png") / 255.0
        # Compared as the release exports them: clipped, 8-bit.
        ours = np.floor(np.clip(apple.alphas[:, :, k], 0, 1) * 255 + 0.5) / 255
        delta = np.abs(ours - reference[:, :, 3])
        assert np.mean(delta <= 2 / 255 + 1e-9) >= 0.99, k
        assert delta.mean() <= 1e-3, k
    metrics = soft_color_metrics(apple.intermediates["image"], apple)
    assert metrics["recon_mse"] == pytest.approx(9.424e-4, rel=2e-3)
    assert metrics["sparsity"] == pytest.approx(0.4107, abs=2e-3)
    assert metrics["color_variance"] == pytest.approx(5.845e-3, rel=1e-2)
    assert 0.015 < apple.intermediates["negative_alpha_fraction"] < 0.03
    reconstruction = read_image(FSCS_DATA / "reference_apple" / "reconstruction.png")
    recomposed = np.einsum("yxk,yxkc->yxc", apple.alphas, apple.colors)
    assert np.abs(recomposed - reconstruction).mean() < 2e-3
