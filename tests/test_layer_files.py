"""Layered files: .ora read back by an independent reader, exact .npz/.tif round trips."""

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
import zipfile

import imageio.v3 as iio
import numpy as np
import pytest

import unmix
from unmix.exceptions import ImageNotFoundError, ImageReadError, ImageWriteError
from unmix.layers import Layers


@pytest.fixture
def image(photo):
    return photo("coffee", (24, 32))


@pytest.fixture
def layers(image):
    rng = np.random.default_rng(3)
    logits = rng.normal(size=image.shape[:2] + (3,)) * 2
    alphas = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    result = Layers(alphas)
    result.estimate_colors(image)
    return result


def read_ora(path):
    """An OpenRaster reader written from the spec alone: the stack bottom first, and the files."""
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        files = {info.filename: archive.read(info.filename) for info in infos}
    root = ET.fromstring(files["stack.xml"])
    stack = []
    for element in reversed(list(root.find("stack"))):  # the spec lists the top layer first
        assert element.tag == "layer"
        stack.append({**element.attrib, "pixels": iio.imread(files[element.attrib["src"]])})
    return infos, root, stack, files


def over(stack):
    """Porter–Duff over of 8-bit straight RGBA layers, bottom first, straight result in [0, 1]."""
    colour = np.zeros(stack[0].shape[:2] + (3,))
    alpha = np.zeros(stack[0].shape[:2] + (1,))
    for rgba in stack:
        a = rgba[..., 3:] / 255.0
        colour = rgba[..., :3] / 255.0 * a + colour * (1 - a)
        alpha = a + alpha * (1 - a)
    return np.concatenate([colour / np.maximum(alpha, 1e-12), alpha], axis=2)


def test_ora_opens_with_an_independent_reader(layers, image, tmp_path):
    path = tmp_path / "coffee.ora"
    names = ["cup", "saucer", "table"]
    assert layers.save(path, image=image, names=names) == [str(path)]
    infos, root, stack, files = read_ora(path)

    # The container: "mimetype" first and stored, so that its type sits at a fixed offset.
    assert infos[0].filename == "mimetype" and infos[0].compress_type == zipfile.ZIP_STORED
    assert files["mimetype"] == b"image/openraster"
    assert (root.get("w"), root.get("h")) == ("32", "24") and root.get("version")
    with open(path, "rb") as f:
        assert f.read(38 + 16)[38:] == b"image/openraster"

    # Bottom first: the original image (hidden), then layer 0, 1, 2.
    assert [entry["name"] for entry in stack] == ["image"] + names
    assert [entry["visibility"] for entry in stack] == ["hidden", "visible", "visible", "visible"]
    np.testing.assert_array_equal(stack[0]["pixels"][..., :3], np.rint(image * 255))
    assert (stack[0]["pixels"][..., 3] == 255).all()
    expected = layers.to_rgba(blend="normal")
    for k, entry in enumerate(stack[1:]):
        assert entry["pixels"].shape == (24, 32, 4) and entry["pixels"].dtype == np.uint8
        assert entry["composite-op"] == "svg:src-over"
        np.testing.assert_allclose(entry["pixels"] / 255.0, expected[:, :, k], atol=0.5 / 255)

    # The merged image is the composite of the visible layers, which recompose the image.
    merged = iio.imread(files["mergedimage.png"])
    visible = [e["pixels"] for e in stack if e.get("visibility", "visible") == "visible"]
    np.testing.assert_allclose(merged / 255.0, over(visible), atol=1 / 255)
    reconstruction = (layers.alphas[..., None] * layers.colors).sum(axis=2)
    np.testing.assert_allclose(merged[..., :3] / 255.0, reconstruction, atol=3 / 255)
    thumbnail = iio.imread(files["Thumbnails/thumbnail.png"])
    assert max(thumbnail.shape[:2]) <= 256 and thumbnail.shape[:2] == (24, 32)


def test_ora_thumbnail_is_at_most_256_and_add_blend_uses_plus(image, tmp_path):
    big = np.repeat(np.repeat(image, 12, axis=0), 12, axis=1)  # 288×384
    alphas = np.dstack([np.full(big.shape[:2], 0.25), np.full(big.shape[:2], 0.75)])
    layers = Layers(alphas, np.stack([big, big], axis=2))
    layers.save(tmp_path / "big.ora", blend="add")
    _, _, stack, files = read_ora(tmp_path / "big.ora")
    assert [e["name"] for e in stack] == ["layer 00", "layer 01"]  # no image given: no image layer
    assert {e["composite-op"] for e in stack} == {"svg:plus"}
    assert iio.imread(files["Thumbnails/thumbnail.png"]).shape[:2] == (192, 256)
    merged = iio.imread(files["mergedimage.png"]) / 255.0
    np.testing.assert_allclose(merged[..., :3], big, atol=2 / 255)


def test_npz_round_trip_is_exact(tmp_path, photo):
    image = photo("coffee", (32, 32))
    layers = unmix.soft_color_segments(image, palette=[[0.1, 0.05, 0.0], [0.55, 0.35, 0.25],
                                                        [0.9, 0.9, 0.9]])
    layers.alphas[0, 0] += 0.05  # values outside [0, 1] survive too
    path = tmp_path / "layers.npz"
    layers.save(path, names=["a", "b", "c"], metadata={"method": "colors", "seed": np.int64(3)})
    back = Layers.load(path)
    np.testing.assert_array_equal(back.alphas, layers.alphas)
    np.testing.assert_array_equal(back.colors, layers.colors)
    assert back.intermediates["names"] == ["a", "b", "c"]
    assert back.intermediates["metadata"] == {"method": "colors", "seed": 3}
    assert back.intermediates["unmix_version"] == unmix.__version__
    models = back.intermediates["models"]
    assert type(models) is type(layers.intermediates["models"])
    np.testing.assert_array_equal(models.means, layers.intermediates["models"].means)
    assert back.intermediates["timings"] == layers.intermediates["timings"]
    # Saved again, nothing changes.
    back.save(tmp_path / "again.npz")
    again = Layers.load(tmp_path / "again.npz")
    np.testing.assert_array_equal(again.alphas, layers.alphas)


def test_npz_without_colours_and_unsaveable_intermediates(tmp_path):
    layers = Layers(np.full((4, 5, 2), 0.5), intermediates={"callback": print, "k": [1, 2]})
    layers.save(tmp_path / "l.npz")
    back = Layers.load(tmp_path / "l.npz")
    assert back.colors is None and back.intermediates["k"] == [1, 2]
    assert "callback" not in back.intermediates
    with np.load(tmp_path / "l.npz", allow_pickle=False) as data:
        assert json.loads(str(data["info"]))["skipped_intermediates"] == ["callback"]


@pytest.mark.parametrize("with_colours", [True, False])
def test_tif_round_trip_is_exact_at_16_bits(layers, tmp_path, with_colours):
    if not with_colours:
        layers = Layers(layers.alphas)
    path = tmp_path / "layers.tif"
    layers.save(path, names=["x", "y", "z"], metadata={"k": 3})
    back = Layers.load(path)
    quantised = np.rint(np.clip(layers.alphas, 0, 1) * 65535) / 65535
    np.testing.assert_array_equal(back.alphas, quantised)
    if with_colours:
        np.testing.assert_array_equal(back.colors, np.rint(layers.colors * 65535) / 65535)
    else:
        assert back.colors is None
    assert back.intermediates["names"] == ["x", "y", "z"]
    assert back.intermediates["metadata"] == {"k": 3}
    back.save(tmp_path / "again.tiff")
    again = Layers.load(tmp_path / "again.tiff")
    np.testing.assert_array_equal(again.alphas, back.alphas)
    # Any reader sees one 16-bit page per layer.
    pages = iio.imread(path, index=None)
    assert pages.dtype == np.uint16 and pages.shape[0] == 3


def test_folder_is_still_the_default(layers, tmp_path):
    paths = layers.save(tmp_path / "out")
    assert os.path.basename(paths[0]) == "alpha-00.png" and len(paths) == 3 + 1 + 6


def test_bad_paths_and_extensions(layers, tmp_path):
    with pytest.raises(ValueError, match=r"extension '\.png'.*\.ora.*\.tif.*\.npz"):
        layers.save(tmp_path / "layers.png")
    with pytest.raises(ImageWriteError, match="does not exist"):
        layers.save(tmp_path / "missing" / "layers.ora")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ImageWriteError, match="is a file"):
        layers.save(tmp_path / "file")
    with pytest.raises(ValueError, match="needs the layers' colours"):
        Layers(layers.alphas).save(tmp_path / "x.ora")
    assert not (tmp_path / "x.ora").exists()
    with pytest.raises(ValueError, match="names must name the 3 layers"):
        layers.save(tmp_path / "x.npz", names=["a"])
    with pytest.raises(TypeError, match=r"metadata\[.f.\] must be plain data"):
        layers.save(tmp_path / "x.npz", metadata={"f": print})
    with pytest.raises(ValueError, match="image must have the layers' shape"):
        layers.save(tmp_path / "x.ora", image=np.zeros((5, 5, 3)))
    with pytest.raises(ValueError, match="blend must be"):
        layers.save(tmp_path / "x.ora", blend="screen")
    assert sorted(os.listdir(tmp_path)) == ["file"]  # nothing half-written


def test_load_refuses_what_it_cannot_read(tmp_path):
    with pytest.raises(ImageNotFoundError):
        Layers.load(tmp_path / "none.npz")
    with pytest.raises(ValueError, match=r"reads \.npz and \.tif"):
        Layers.load(__file__)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ImageReadError, match="not a layers file"):
        Layers.load(tmp_path / "other.npz")
    (tmp_path / "broken.tif").write_bytes(b"II*\0garbage")
    with pytest.raises(ImageReadError, match="cannot read layers"):
        Layers.load(tmp_path / "broken.tif")


def _krita():
    return shutil.which("krita") if shutil.which("xvfb-run") else None


@pytest.mark.slow
@pytest.mark.skipif(_krita() is None, reason="needs Krita and xvfb-run (apt-get install krita xvfb)")
def test_krita_opens_the_ora_headless(layers, image, tmp_path):
    """Krita, on a virtual display, opens the .ora and exports its flattened stack."""
    layers.save(tmp_path / "layers.ora", image=image)
    out = tmp_path / "flat.png"
    # Krita needs an X display even to export; its own profile goes to a scratch HOME.
    subprocess.run(["xvfb-run", "-a", _krita(), "--nosplash", str(tmp_path / "layers.ora"),
                    "--export", "--export-filename", str(out)],
                   env={**os.environ, "HOME": str(tmp_path)}, check=True, timeout=300,
                   capture_output=True)
    flat = iio.imread(out)
    merged = iio.imread(read_ora(tmp_path / "layers.ora")[3]["mergedimage.png"])
    assert flat.shape == merged.shape
    np.testing.assert_allclose(flat[..., :3] / 255.0, merged[..., :3] / 255.0, atol=1 / 255)
