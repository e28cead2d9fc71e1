import os

import numpy as np
import pytest

from unmix.exceptions import ImageReadError, ImageWriteError, UnmixError
from unmix.image import as_float_image, example_image, read_image, write_image


def test_uint8_and_uint16_are_scaled():
    img8 = np.array([[0, 128, 255]] * 3, dtype=np.uint8)
    out = as_float_image(img8)
    assert out.shape == (3, 3, 3) and out.dtype == np.float64
    np.testing.assert_allclose(out[0, :, 0], [0, 128 / 255, 1])
    img16 = (img8.astype(np.uint16) * 257)[:, :, None].repeat(3, axis=2)
    np.testing.assert_allclose(as_float_image(img16), out)


def test_float32_gray_and_single_channel_become_rgb():
    gray = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    out = as_float_image(gray)
    assert out.shape == (4, 5, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    np.testing.assert_array_equal(as_float_image(gray[:, :, None]), out)


def test_float64_rgb_is_not_copied():
    img = np.random.default_rng(0).random((5, 6, 3))
    assert as_float_image(img) is img


def test_rgba_drops_alpha_with_warning():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    with pytest.warns(UserWarning, match="alpha"):
        out = as_float_image(rgba)
    assert out.shape == (4, 4, 3)


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (np.full((4, 4, 3), np.nan), ValueError, "NaN"),
        (np.full((4, 4, 3), np.inf), ValueError, "NaN or infinite"),
        (np.full((4, 4, 3), 1.5), ValueError, r"\[0, 1\]"),
        (np.full((4, 4, 3), -0.1), ValueError, r"\[0, 1\]"),
        (np.zeros((0, 4, 3)), ValueError, "at least 3×3"),
        (np.zeros((2, 5, 3)), ValueError, "at least 3×3"),
        (np.zeros((4, 4, 2)), ValueError, "shape"),
        (np.zeros((4, 4, 3, 1)), ValueError, "shape"),
        (np.zeros(16), ValueError, "shape"),
        (np.array([["a"] * 4] * 4), TypeError, "numeric dtype"),
        (np.zeros((4, 4, 3), dtype=np.int32), TypeError, "ambiguous"),
        (np.zeros((4, 4, 3), dtype=complex), TypeError, "real"),
        (None, TypeError, "None"),
    ],
)
def test_bad_images_raise_clear_errors(bad, error, match):
    with pytest.raises(error, match=match):
        as_float_image(bad)


def test_error_names_the_argument():
    with pytest.raises(ValueError, match="^trimap "):
        as_float_image(np.full((4, 4), 2.0), name="trimap")


def test_write_then_read_roundtrip(tmp_path):
    img = example_image("chelsea", (30, 40))
    write_image(tmp_path / "x16.tif", img, bit_depth=16)
    np.testing.assert_allclose(read_image(tmp_path / "x16.tif"), img, atol=1 / 65535)
    with pytest.raises(ImageWriteError, match="TIFF"):
        write_image(tmp_path / "x16.png", img, bit_depth=16)
    write_image(tmp_path / "x8.png", img)
    np.testing.assert_allclose(read_image(tmp_path / "x8.png"), img, atol=0.5 / 255 + 1e-12)


def test_write_clips_soft_segments(tmp_path):
    alpha = np.array([[-0.1, 0.5, 1.09]] * 3)
    write_image(tmp_path / "a.png", alpha, bit_depth=16)
    np.testing.assert_allclose(read_image(tmp_path / "a.png")[0, :, 0], [0, 0.5, 1], atol=1e-4)


def test_write_scales_integer_pixels(tmp_path):
    # uint8 and uint16 arrays are pixel values, scaled as as_float_image scales them.
    pixels = np.array([[0, 128, 255]] * 3, dtype=np.uint8)
    write_image(tmp_path / "u8.png", pixels)
    np.testing.assert_array_equal(read_image(tmp_path / "u8.png")[:, :, 0], pixels / 255.0)
    write_image(tmp_path / "u16.png", pixels.astype(np.uint16) * 257, bit_depth=16)
    np.testing.assert_allclose(read_image(tmp_path / "u16.png")[:, :, 0], pixels / 255.0)
    with pytest.raises(TypeError, match="dtype int64"):
        write_image(tmp_path / "i.png", np.zeros((3, 3), dtype=np.int64))


@pytest.mark.parametrize("path", [None, 5, np.zeros((4, 4, 3))])
def test_read_image_refuses_non_paths(path):
    with pytest.raises(TypeError, match="path must be a file path"):
        read_image(path)


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ImageReadError, match="is a folder"):
        read_image(tmp_path)
    with pytest.raises(ValueError, match="NUL"):
        read_image(str(tmp_path / "a\0b.png"))
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not an image")
    with pytest.raises(ImageReadError, match="cannot read"):
        read_image(junk)
    # bytes paths are paths (in the file-system encoding), not image data
    write_image(tmp_path / "ok.png", np.zeros((3, 3)))
    assert read_image(os.fsencode(tmp_path / "ok.png")).shape == (3, 3, 3)


def test_read_errors_are_one_family(tmp_path):
    for call in (lambda: read_image(tmp_path / "missing.png"), lambda: read_image(tmp_path)):
        with pytest.raises(UnmixError):
            call()


def test_write_errors(tmp_path):
    with pytest.raises(ValueError, match="bit_depth"):
        write_image(tmp_path / "a.png", np.zeros((3, 3)), bit_depth=12)
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "a.png", np.full((3, 3), np.nan))
    with pytest.raises(TypeError, match="dtype <U1"):
        write_image(tmp_path / "a.png", np.full((3, 3), "a"))


@pytest.mark.parametrize(
    "name, match",
    [
        ("missing/a.png", "does not exist"),
        ("file.png/a.png", "is a file, not a folder"),
        ("folder", "is a folder"),
        ("noextension", "no image extension"),
        ("a.unknown", "unknown image extension"),
    ],
)
def test_write_errors_name_the_path(tmp_path, name, match):
    (tmp_path / "folder").mkdir()
    write_image(tmp_path / "file.png", np.zeros((3, 3)))
    with pytest.raises(ImageWriteError, match=match):
        write_image(tmp_path / name, np.zeros((3, 3)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.png", "folder"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="needs POSIX permissions that bind the user (not root)")
def test_write_into_read_only_folder(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(ImageWriteError, match="not writable"):
            write_image(tmp_path / "a.png", np.zeros((3, 3)))
    finally:
        tmp_path.chmod(0o700)


def test_rgba_as_jpeg_is_refused_with_the_fix(tmp_path):
    with pytest.raises(ImageWriteError, match=r"alpha channel.*\.png"):
        write_image(tmp_path / "a.jpg", np.zeros((3, 3, 4)))
    write_image(tmp_path / "a.jpg", np.zeros((3, 3, 3)))
    assert read_image(tmp_path / "a.jpg").shape == (3, 3, 3)


def test_failed_write_keeps_the_old_file_and_leaves_no_partial_file(tmp_path, monkeypatch):
    import imageio.v3 as iio

    target = tmp_path / "a.png"
    write_image(target, np.ones((3, 3)))
    before = target.read_bytes()

    def fail_midway(path, data, **kwargs):
        with open(path, "wb") as file:
            file.write(b"half an image")
        raise RuntimeError("disk full")

    monkeypatch.setattr(iio, "imwrite", fail_midway)
    with pytest.raises(RuntimeError, match="disk full"):
        write_image(target, np.zeros((3, 3)))
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_example_image():
    img = example_image("coffee", (24, 36))
    assert img.shape == (24, 36, 3) and 0 <= img.min() and img.max() <= 1
    with pytest.raises(ValueError, match="unknown example"):
        example_image("nope")
    with pytest.raises(ValueError, match="shape"):
        example_image("coffee", (2, 10))
