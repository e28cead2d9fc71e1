"""Tests of unmix.metrics.

Matting metrics: the hand-computed cases and constants of ``spec/matting.md``
§4.5, invariances, and a direct 2-D ``scipy.ndimage.convolve`` cross-check of
the gradient error.
"""

import doctest

import numpy as np
import pytest
from scipy.ndimage import convolve

from unmix import metrics
from unmix.metrics import connectivity_error, gradient_error, matting_errors, mse, sad

# ----------------------------------------------------------------------------- matting


@pytest.fixture
def mattes():
    """A soft ground truth, a perturbed prediction and a DIM trimap (uint8)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :64]
    truth = np.clip((20 - np.hypot(yy - 24, xx - 32)) / 6 + 0.5, 0, 1)
    pred = np.clip(truth + gaussian_filter(rng.normal(size=truth.shape), 1.5) * 0.3, 0, 1)
    trimap = np.full(truth.shape, 128, np.uint8)
    trimap[truth == 1] = 255
    trimap[truth == 0] = 0
    trimap[:3] = 0
    return pred, truth, trimap


def test_identical_mattes_have_no_error(mattes):
    _, truth, trimap = mattes
    assert matting_errors(truth, truth, trimap) == {
        "sad": 0.0, "mse": 0.0, "gradient": 0.0, "connectivity": 0.0}


def test_one_wrong_pixel():
    gt = np.full((30, 30), 255, np.uint8)
    pred = gt.copy()
    pred[10, 12] = 0
    trimap = np.zeros((30, 30), np.uint8)
    trimap[5:20, 5:25] = 128
    n_unknown = 15 * 20
    assert sad(pred, gt, trimap) == pytest.approx(0.001)
    assert mse(pred, gt, trimap) == pytest.approx(1 / n_unknown)
    # l = 0 at that pixel: φ_pred = 1 − 0 ... = 1 (d = 0 < 0.15), φ_gt = 1 − 1 = 0.
    assert connectivity_error(pred, gt, trimap) == pytest.approx(0.001)


def test_off_by_one_code_and_no_uint8_wrap_around():
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 255, size=(20, 20)).astype(np.uint8)  # ≤ 254
    pred = gt + np.uint8(1)
    trimap = np.full((20, 20), 128, np.uint8)
    assert sad(pred, gt, trimap) == pytest.approx(400 / 255 / 1000)
    assert mse(pred, gt, trimap) == pytest.approx(1 / 255**2)
    # Swapping the arguments must not wrap around (uint8 0 − 1 = 255).
    assert sad(gt, pred, trimap) == pytest.approx(400 / 255 / 1000)


def test_region_is_exactly_trimap_128(mattes):
    pred, truth, trimap = mattes
    resized_like = trimap.copy()
    resized_like[trimap == 128] = 127  # e.g. a resized trimap: evaluated nowhere
    assert sad(pred, truth, resized_like) == 0.0
    # Float trimaps are read through their 8-bit code, boolean masks directly.
    assert sad(pred, truth, trimap / 255.0) == sad(pred, truth, trimap)
    assert sad(pred, truth, trimap == 128) == sad(pred, truth, trimap)
    everywhere = np.abs(np.rint(pred * 255) - np.rint(truth * 255)).sum() / 255 / 1000
    assert sad(pred, truth) == pytest.approx(everywhere)


def test_quantization(mattes):
    pred, truth, trimap = mattes
    codes = np.rint(pred * 255).astype(np.uint8), np.rint(truth * 255).astype(np.uint8)
    for metric in (sad, mse, gradient_error, connectivity_error):
        assert metric(pred, truth, trimap) == pytest.approx(metric(*codes, trimap), rel=1e-12)
    exact = np.abs(pred - truth)[trimap == 128].sum() / 1000
    assert sad(pred, truth, trimap, quantize=False) == pytest.approx(exact)
    assert sad(pred, truth, trimap, quantize=False) != sad(pred, truth, trimap)


def test_symmetry_and_rgb_inputs(mattes):
    pred, truth, trimap = mattes
    for metric in (sad, mse, gradient_error, connectivity_error):
        assert metric(pred, truth, trimap) == pytest.approx(metric(truth, pred, trimap))
    rgb = np.dstack([truth, np.zeros_like(truth), np.ones_like(truth)])
    assert matting_errors(pred, rgb, trimap) == matting_errors(pred, truth, trimap)


def test_gradient_kernel_constants():
    smooth, derivative = metrics._gaussian_derivative_kernels()
    h = np.outer(smooth, derivative)
    assert h.shape == (9, 9)
    np.testing.assert_allclose(h[4], [0.027487, 0.122946, 0.293474, 0.315434, 0, -0.315434,
                                      -0.293474, -0.122946, -0.027487], atol=1e-6)
    np.testing.assert_allclose(h[:, 5], [-0.005324, -0.031754, -0.113697, -0.244410, -0.315434,
                                         -0.244410, -0.113697, -0.031754, -0.005324], atol=1e-6)
    assert np.abs(h).sum() == pytest.approx(5.32399, abs=1e-5)
    assert (h**2).sum() == pytest.approx(1.0)
    ramp = np.tile(np.arange(30.0), (30, 1))
    assert convolve(ramp, h, mode="nearest")[15, 15] == pytest.approx(9.68383, abs=1e-5)


def test_gradient_equals_a_direct_2d_convolution(mattes):
    pred, truth, trimap = mattes
    smooth, derivative = metrics._gaussian_derivative_kernels()
    hx = np.outer(smooth, derivative)

    def magnitude(a):
        a = np.rint(a * 255) / 255
        a = (a - a.min()) / (a.max() - a.min())  # mat2gray
        return np.hypot(convolve(a, hx, mode="nearest"), convolve(a, hx.T, mode="nearest"))

    expected = ((magnitude(pred) - magnitude(truth))[trimap == 128] ** 2).sum() / 1000
    assert gradient_error(pred, truth, trimap) == pytest.approx(expected, rel=1e-10)


def test_gradient_uses_mat2gray():
    # A prediction spanning [26, 230] is stretched to [0, 1] before the gradient:
    # the same ramp as the full-range target up to rounding, so almost no error,
    # whereas the unstretched magnitudes differ by a fifth.
    target = np.tile(np.linspace(0, 255, 40).round().astype(np.uint8), (20, 1))
    squeezed = (26 + target / 255 * 204).round().astype(np.uint8)
    trimap = np.full(target.shape, 128, np.uint8)
    hx = np.outer(*metrics._gaussian_derivative_kernels())

    def unstretched(a):
        a = a / 255.0
        return np.hypot(convolve(a, hx, mode="nearest"), convolve(a, hx.T, mode="nearest"))

    without = ((unstretched(squeezed) - unstretched(target)) ** 2).sum() / 1000
    assert gradient_error(squeezed, target, trimap) < 0.01 * without
    assert gradient_error(np.full((5, 5), 7, np.uint8), np.full((5, 5), 9, np.uint8)) == 0.0


def test_connectivity_threshold_ties_use_matlab_semantics():
    # A block of value 153 (exactly 0.6) inside 255: at t = 0.6 it still belongs to
    # the component, so its level is 0.6 (a float64 arange port gives 0.5).
    gt = np.full((20, 20), 255, np.uint8)
    gt[5:10, 5:10] = 153
    levels = metrics._connectivity_levels(lambda k: 10 * gt.astype(int) >= 255 * k,
                                          lambda k: 10 * gt.astype(int) >= 255 * k)
    assert levels[7, 7] == pytest.approx(0.6) and levels[0, 0] == 1.0
    # In the error: pred = 153 and target = 192 on the block leave it at l = 0.6,
    # so d_pred = 0 (φ = 1) and d_target = 192/255 − 0.6 = 0.153 ≥ 0.15
    # (φ = 0.847). With l = 0.5 the error would be 0.253 per pixel instead.
    pred = gt.copy()
    target = gt.copy()
    target[5:10, 5:10] = 192
    trimap = np.full(gt.shape, 128, np.uint8)
    expected = 25 * (192 / 255 - 0.6) / 1000
    assert connectivity_error(pred, target, trimap) == pytest.approx(expected)


def test_connectivity_largest_component_ties_follow_column_major_order():
    mask = np.zeros((6, 6), bool)
    mask[0, 3:5] = True   # met first in row-major order
    mask[3:5, 0] = True   # met first in column-major order (MATLAB's)
    picked = metrics._largest_component(mask)
    np.testing.assert_array_equal(np.argwhere(picked), [[3, 0], [4, 0]])
    assert not metrics._largest_component(np.zeros((3, 3), bool)).any()


def test_bad_inputs(mattes):
    pred, truth, trimap = mattes
    with pytest.raises(ValueError, match="target"):
        sad(pred, truth[:-1], trimap)
    with pytest.raises(ValueError, match="trimap"):
        sad(pred, truth, trimap[:-1])
    with pytest.raises(TypeError, match="pred"):
        sad(pred.astype(np.int64), truth, trimap)
    with pytest.raises(ValueError, match="NaN"):
        sad(np.full_like(pred, np.nan), truth, trimap)


def test_docstring_examples():
    assert doctest.testmod(metrics).failed == 0
