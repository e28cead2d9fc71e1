"""Tests of unmix.matting.trimap: trimap conventions and generated trimaps."""

import doctest

import numpy as np
import pytest

import unmix.matting.trimap as trimap_module
from unmix.layers import Layers
from unmix.matting import split_trimap, trimap_from_alpha, trimap_from_segment


def test_uint8_and_float_conventions_agree():
    t = np.array([[0, 25, 26, 128, 229, 230, 255]], np.uint8)
    fg, bg, unknown = split_trimap(t)
    np.testing.assert_array_equal(fg[0], [0, 0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(bg[0], [1, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(unknown[0], ~(fg | bg)[0])
    for other in (t / 255.0, (t / 255.0).astype(np.float32), np.dstack([t, t, t])):
        for a, b in zip(split_trimap(other), (fg, bg, unknown)):
            np.testing.assert_array_equal(a, b)


def test_uint8_values_as_floats_warn_and_other_ints_are_read_as_8_bit():
    t = np.array([[0, 128, 255]])
    with pytest.warns(UserWarning, match="8-bit"):
        _, _, unknown = split_trimap(t)  # int64
    np.testing.assert_array_equal(unknown[0], [0, 1, 0])
    with pytest.warns(UserWarning, match="outside"), pytest.raises(ValueError, match="no background"):
        split_trimap(np.array([[128.0, 255.0]]))


def test_errors():
    with pytest.raises(ValueError, match="no foreground"):
        split_trimap(np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match="no background"):
        split_trimap(np.full((3, 3), 255, np.uint8))
    with pytest.raises(ValueError, match="shape"):
        split_trimap(np.array([[0, 255]], np.uint8), shape=(2, 2))
    with pytest.raises(ValueError, match="NaN"):
        split_trimap(np.array([[0.0, np.nan, 1.0]]))
    with pytest.raises(ValueError, match="thresholds"):
        split_trimap(np.array([[0, 255]], np.uint8), fg_threshold=0.1, bg_threshold=0.5)
    with pytest.raises(ValueError, match="band"):
        trimap_from_alpha(np.zeros((3, 3)), band=-1)


def test_trimap_from_alpha_band_is_the_erosion_radius():
    alpha = np.zeros((41, 41))
    alpha[:, 20] = 0.5
    alpha[:, 21:] = 1.0
    t0 = trimap_from_alpha(alpha, band=0)
    np.testing.assert_array_equal(np.unique(t0[:, 20]), [128])
    assert np.all(t0[:, :20] == 0) and np.all(t0[:, 21:] == 255)
    t5 = trimap_from_alpha(alpha, band=5)
    row = t5[20]
    assert np.all(row[:15] == 0) and np.all(row[15:26] == 128) and np.all(row[26:] == 255)
    # 8-bit mattes: 254 is not opaque, 255 is.
    codes = np.array([[0, 1, 254, 255]], np.uint8)
    np.testing.assert_array_equal(trimap_from_alpha(codes, band=0)[0], [0, 128, 128, 255])


def test_trimap_from_segment_merges_the_chosen_layers():
    a = np.zeros((30, 30, 3))
    a[:, :10, 0] = 1.0
    a[:, 10:20, 1] = 1.0
    a[:, 20:, 2] = 1.0
    a += np.random.default_rng(0).normal(scale=0.02, size=a.shape)  # SSS-like noise
    t = trimap_from_segment(Layers(a), [0, 1], band=2)
    # The edge lies between columns 19 and 20; both sides lose 2 pixels.
    assert np.all(t[:, :18] == 255) and np.all(t[:, 18:22] == 128) and np.all(t[:, 22:] == 0)
    complement = trimap_from_segment(a, 2, band=2)
    np.testing.assert_array_equal(complement == 0, t == 255)
    np.testing.assert_array_equal(complement == 128, t == 128)
    with pytest.raises(ValueError, match="index"):
        trimap_from_segment(a, 3)


def test_docstring_examples():
    # As pytest's --doctest-modules runs them (setup.cfg's doctest_optionflags).
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    assert doctest.testmod(trimap_module, optionflags=flags).failed == 0
