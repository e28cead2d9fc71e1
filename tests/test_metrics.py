"""Tests of unmix.metrics.

Matting metrics: the hand-computed cases and constants of ``spec/matting.md``
§4.5, invariances, and a direct 2-D ``scipy.ndimage.convolve`` cross-check of
the gradient error. Layer unions: an exhaustive search by ``itertools`` and
the module's own ``sad``/``mse``, invariance to the layers' order, and a
photograph's matte split into layers.
"""

import doctest
import itertools

import numpy as np
import pytest
from scipy.ndimage import convolve

from unmix import Layers, metrics
from unmix.metrics import (best_layer_union, connectivity_error, gradient_error, matting_errors,
                           mse, sad)

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


# ----------------------------------------------------------------------------- layer unions


def _soft_layers(rng, shape, n_layers):
    """Random layers that sum to one, some slightly outside [0, 1] (as soft segments are)."""
    alphas = rng.dirichlet(np.full(n_layers, 0.5), size=shape)
    noise = rng.normal(scale=0.02, size=alphas.shape)
    return alphas + noise - noise.mean(axis=2, keepdims=True)


def _matte_near_a_union(rng, alphas):
    """A matte close to the union of a random non-empty subset of the layers."""
    chosen = rng.random(alphas.shape[2]) < 0.5
    chosen[rng.integers(alphas.shape[2])] = True
    union = alphas[:, :, chosen].sum(axis=2)
    return np.clip(union + rng.normal(scale=0.1, size=union.shape), 0, 1)


def _random_trimap(rng, shape):
    return rng.choice(np.array([0, 128, 255], np.uint8), size=shape, p=[0.3, 0.4, 0.3])


def _brute_force_union(alphas, truth, trimap, criterion, region, quantize):
    """(error, subset) of the best union, over itertools.combinations and sad/mse;
    ties to the fewest layers, then the first subset in lexicographic order."""
    metric = {"mse": mse, "sad": sad}[criterion]
    evaluated = trimap if region == "unknown" else None
    scored = []
    for size in range(1, alphas.shape[2] + 1):
        for subset in itertools.combinations(range(alphas.shape[2]), size):
            union = np.clip(alphas[:, :, list(subset)].sum(axis=2), 0, 1)
            scored.append((metric(union, truth, evaluated, quantize=quantize), size, subset))
    error, _, subset = min(scored)
    return error, subset


def _check_union_metrics(union, alphas, truth, trimap, quantize):
    """The result's matte is the clipped union, and its errors are sad/mse's."""
    expected = np.clip(alphas[:, :, list(union.subset)].sum(axis=2), 0, 1)
    np.testing.assert_allclose(union.alpha, expected, rtol=0, atol=1e-15)
    assert union.sad == sad(union.alpha, truth, quantize=quantize)
    assert union.mse == mse(union.alpha, truth, quantize=quantize)
    if trimap is None:
        assert union.sad_unknown is None and union.mse_unknown is None
    else:
        assert union.sad_unknown == sad(union.alpha, truth, trimap, quantize=quantize)
        assert union.mse_unknown == mse(union.alpha, truth, trimap, quantize=quantize)


@pytest.mark.parametrize("n_layers", range(1, 7))
@pytest.mark.parametrize("criterion", ["mse", "sad"])
@pytest.mark.parametrize("quantize", [True, False])
@pytest.mark.parametrize("region, with_trimap", [("image", False), ("image", True),
                                                 ("unknown", True)])
def test_best_layer_union_equals_brute_force(n_layers, criterion, quantize, region, with_trimap):
    rng = np.random.default_rng(10 * n_layers + quantize)
    alphas = _soft_layers(rng, (7, 9), n_layers)
    truth = _matte_near_a_union(rng, alphas)
    trimap = _random_trimap(rng, truth.shape) if with_trimap else None
    union = best_layer_union(alphas, truth, trimap, criterion=criterion, region=region,
                             quantize=quantize)
    error, subset = _brute_force_union(alphas, truth, trimap, criterion, region, quantize)
    assert union.subset == subset
    measured = {"image": "", "unknown": "_unknown"}[region]
    assert getattr(union, criterion + measured) == pytest.approx(error, rel=1e-12)
    _check_union_metrics(union, alphas, truth, trimap, quantize)


@pytest.mark.parametrize("criterion", ["mse", "sad"])
def test_best_layer_union_is_invariant_to_the_layers_order(criterion):
    # 64×72 pixels: more than one part of the parallel search.
    rng = np.random.default_rng(3)
    alphas = _soft_layers(rng, (64, 72), 6)
    truth = _matte_near_a_union(rng, alphas)
    trimap = _random_trimap(rng, truth.shape)
    union = best_layer_union(alphas, truth, trimap, criterion=criterion)
    assert union.subset == _brute_force_union(alphas, truth, trimap, criterion, "image", True)[1]

    def check_reordered(order):
        # Layer j of the reordered stack is layer order[j] of the original.
        reordered = best_layer_union(alphas[:, :, order], truth, trimap, criterion=criterion)
        assert reordered.subset == tuple(sorted(np.argsort(order)[list(union.subset)]))
        for name in ("sad", "mse", "sad_unknown", "mse_unknown"):
            assert getattr(reordered, name) == pytest.approx(getattr(union, name), rel=1e-12)
        np.testing.assert_allclose(reordered.alpha, union.alpha, rtol=0, atol=1e-15)

    check_reordered(rng.permutation(6))
    # One layer of the union exchanged with one outside it.
    swapped = np.arange(6)
    inside, outside = union.subset[0], sorted(set(range(6)) - set(union.subset))[0]
    swapped[[inside, outside]] = swapped[[outside, inside]]
    check_reordered(swapped)


def _photograph_matte():
    """A ground-truth-like matte from a photograph: skimage's horse silhouette,
    downscaled with anti-aliasing (soft edges), as 8-bit codes."""
    from skimage import data, transform

    horse = transform.resize((~data.horse()).astype(float), (48, 60), anti_aliasing=True)
    return np.rint(np.clip(horse, 0, 1) * 255).astype(np.uint8)


def _split_into_layers(matte, rng):
    """Five layers summing to one: the object (``matte`` / 255) cut into three soft
    pieces from left to right, the background into two from top to bottom, shuffled.
    Returns the layers and the indices of the object's pieces."""
    truth = matte / 255.0
    yy, xx = np.mgrid[:truth.shape[0], :truth.shape[1]] / np.array(truth.shape)[:, None, None]

    def partition(coordinate, centres):
        weights = np.exp(-((coordinate[..., None] - np.asarray(centres)) / 0.2) ** 2)
        return weights / weights.sum(axis=2, keepdims=True)

    pieces = np.concatenate([truth[..., None] * partition(xx, [0.2, 0.5, 0.8]),
                             (1 - truth)[..., None] * partition(yy, [0.3, 0.7])], axis=2)
    order = rng.permutation(5)
    return pieces[:, :, order], tuple(sorted(np.argsort(order)[:3]))


def test_best_layer_union_recovers_a_photographs_pieces():
    rng = np.random.default_rng(5)
    matte = _photograph_matte()
    trimap = np.where(matte == 0, 0, np.where(matte == 255, 255, 128)).astype(np.uint8)
    alphas, object_pieces = _split_into_layers(matte, rng)
    for criterion, region in itertools.product(["mse", "sad"], ["image", "unknown"]):
        union = best_layer_union(alphas, matte, trimap, criterion=criterion, region=region)
        assert union.subset == object_pieces
        assert (union.sad, union.mse, union.sad_unknown, union.mse_unknown) == (0, 0, 0, 0)
    exact = best_layer_union(alphas, matte, trimap, quantize=False)
    assert exact.subset == object_pieces and exact.mse == pytest.approx(0, abs=1e-25)
    # Perturbed as a segmentation would be (still summing to one, partly outside
    # [0, 1]): the object's pieces are still the best union, with small errors.
    noise = rng.normal(scale=0.03, size=alphas.shape)
    noisy = alphas + noise - noise.mean(axis=2, keepdims=True)
    assert noisy.min() < 0 and noisy.max() > 1
    for criterion in ("mse", "sad"):
        union = best_layer_union(noisy, matte, trimap, criterion=criterion)
        assert union.subset == object_pieces
        assert 0 < union.mse < 1e-3 and 0 < union.mse_unknown < 1e-2
        _check_union_metrics(union, noisy, matte, trimap, quantize=True)


def test_best_layer_union_ties_go_to_the_fewest_layers():
    rng = np.random.default_rng(6)
    matte = _photograph_matte()
    alphas, object_pieces = _split_into_layers(matte, rng)
    with_empty_layer = np.concatenate([np.zeros(matte.shape + (1,)), alphas], axis=2)
    union = best_layer_union(with_empty_layer, matte)
    assert union.sad == 0 and union.subset == tuple(k + 1 for k in object_pieces)


def test_best_layer_union_accepts_layers():
    rng = np.random.default_rng(7)
    alphas = _soft_layers(rng, (12, 10), 4)
    truth = _matte_near_a_union(rng, alphas)
    from_layers = best_layer_union(Layers(alphas), truth, criterion="sad")
    from_array = best_layer_union(alphas, truth, criterion="sad")
    assert from_layers.subset == from_array.subset and from_layers.sad == from_array.sad


def test_best_layer_union_bad_inputs():
    rng = np.random.default_rng(8)
    alphas = _soft_layers(rng, (6, 5), 3)
    truth = _matte_near_a_union(rng, alphas)
    trimap = _random_trimap(rng, truth.shape)
    with pytest.raises(ValueError, match="alpha_true"):
        best_layer_union(alphas, truth[:-1])
    with pytest.raises(ValueError, match="trimap"):
        best_layer_union(alphas, truth, trimap[:, :-1])
    with pytest.raises(ValueError, match="layers"):
        best_layer_union(alphas[:, :, 0], truth)
    with pytest.raises(ValueError, match=r"at most 12 layers.*K = 13"):
        best_layer_union(np.full((6, 5, 13), 1 / 13), truth)
    with pytest.raises(ValueError, match="criterion"):
        best_layer_union(alphas, truth, criterion="gradient")
    with pytest.raises(ValueError, match="region"):
        best_layer_union(alphas, truth, trimap, region="band")
    with pytest.raises(ValueError, match="trimap"):
        best_layer_union(alphas, truth, region="unknown")
    with pytest.raises(ValueError, match="trimap has no unknown"):
        best_layer_union(alphas, truth, np.zeros_like(trimap), region="unknown")
    with_nan = alphas.copy()
    with_nan[2, 3, 1] = np.nan
    with pytest.raises(ValueError, match="layers contains 1 NaN"):
        best_layer_union(with_nan, truth)
    with pytest.raises(ValueError, match="alpha_true contains NaN"):
        best_layer_union(alphas, np.where(truth > 0.5, np.nan, truth))
    with pytest.raises(TypeError, match="layers"):
        best_layer_union((alphas * 255).astype(np.uint8), truth)


def test_docstring_examples():
    assert doctest.testmod(metrics).failed == 0
