import numpy as np
import pytest

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
    with pytest.raises(ValueError, match="TIFF"):
        write_image(tmp_path / "x16.png", img, bit_depth=16)
    write_image(tmp_path / "x8.png", img)
    np.testing.assert_allclose(read_image(tmp_path / "x8.png"), img, atol=0.5 / 255 + 1e-12)


def test_write_clips_soft_segments(tmp_path):
    alpha = np.array([[-0.1, 0.5, 1.09]] * 3)
    write_image(tmp_path / "a.png", alpha, bit_depth=16)
    np.testing.assert_allclose(read_image(tmp_path / "a.png")[0, :, 0], [0, 0.5, 1], atol=1e-4)


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_image(tmp_path / "missing.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not an image")
    with pytest.raises(ValueError, match="cannot read"):
        read_image(junk)


def test_write_errors(tmp_path):
    with pytest.raises(ValueError, match="bit_depth"):
        write_image(tmp_path / "a.png", np.zeros((3, 3)), bit_depth=12)
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "a.png", np.full((3, 3), np.nan))


def test_example_image():
    img = example_image("coffee", (24, 36))
    assert img.shape == (24, 36, 3) and 0 <= img.min() and img.max() <= 1
    with pytest.raises(ValueError, match="unknown example"):
        example_image("nope")
    with pytest.raises(ValueError, match="shape"):
        example_image("coffee", (2, 10))
