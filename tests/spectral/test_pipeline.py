import numpy as np
import pytest

from unmix import Layers
from unmix.graph import GraphParams
from unmix.spectral import SemanticSoftSegmentationParams, semantic_soft_segments


@pytest.fixture(scope="module")
def result():
    from unmix.image import example_image

    image = example_image("coffee", (90, 120))
    return image, semantic_soft_segments(image, keep_intermediates=True)


def test_five_non_trivial_soft_layers(result):
    image, layers = result
    assert isinstance(layers, Layers) and layers.alphas.shape == (90, 120, 5)
    alphas = layers.alphas
    assert np.isfinite(alphas).all()
    assert np.abs(alphas.sum(axis=2) - 1).max() < 1e-4
    assert -0.5 < alphas.min() and alphas.max() < 1.5
    # every layer owns a real part of the image, and is soft somewhere.  The smallest
    # share is 0.9–2.7 % under rounding-level changes (eigensolver start, k-means seed:
    # the constrained stage amplifies them, spec §10), so the bound leaves room for that.
    owned = np.bincount(alphas.argmax(axis=2).ravel(), minlength=5) / alphas[..., 0].size
    assert owned.min() > 0.005
    assert ((alphas > 0.1) & (alphas < 0.9)).any(axis=(0, 1)).all()


def test_intermediates_are_the_stages_outputs(result):
    image, layers = result
    inter = layers.intermediates
    N = 90 * 120
    assert inter["eigvecs"].shape == (N, 100) and np.all(np.diff(inter["eigvals"]) >= 0)
    initial = inter["initial_segments"]
    assert 5 <= initial.shape[2] <= 40
    np.testing.assert_allclose(initial.sum(axis=2), 1.0, atol=1e-10)  # exact sum-to-one
    np.testing.assert_allclose(inter["grouped_segments"].sum(axis=2), 1.0, atol=1e-10)
    assert inter["laplacian"].shape == (N, N)
    assert set(inter["timings"]) >= {"eigenpairs", "constrained sparsification",
                                     "relaxed sparsification"}


def test_deterministic_for_a_seed(result):
    image, layers = result
    again = semantic_soft_segments(image, random_state=0)
    np.testing.assert_array_equal(again.alphas, layers.alphas)


def matched_deviation(a, b):
    """Mean |Δα| after the best one-to-one matching of layers."""
    from scipy.optimize import linear_sum_assignment

    cost = np.array([[np.abs(a[..., i] - b[..., j]).mean() for j in range(a.shape[2])]
                     for i in range(a.shape[2])])
    rows, cols = linear_sum_assignment(cost)
    return cost[rows, cols].mean()


def test_fast_mode_gives_five_layers_near_the_full_ones(result):
    image, layers = result
    fast = semantic_soft_segments(image, params=SemanticSoftSegmentationParams(fast_pixels=3000),
                                  mode="fast", keep_intermediates=True)
    assert fast.alphas.shape == layers.alphas.shape
    assert np.abs(fast.alphas.sum(axis=2) - 1).max() < 1e-4
    owned = np.bincount(fast.alphas.argmax(axis=2).ravel(), minlength=5) / fast.alphas[..., 0].size
    assert owned.min() > 0.01
    inter = fast.intermediates
    assert {"reduce", "upsample", "Laplacian (full)",
            "relaxed sparsification (full)"} <= set(inter["timings"])
    assert inter["grouped_segments"].shape[2] == 5 and inter["grouped_segments"].size < 3000 * 5 * 1.1
    assert inter["upsampled_segments"].shape == layers.alphas.shape
    # Same image, same seed: the layers match the full mode's ones, up to the grouping of
    # a few segments (bench_sss.py measures 0.03-0.10 mean |Δα| at 320-640 px widths).
    # Unrelated layers would be ~0.3 apart.
    assert matched_deviation(layers.alphas, fast.alphas) < 0.2


def test_params():
    paper = SemanticSoftSegmentationParams.paper()
    assert paper.graph == GraphParams.paper() and paper.n_eigs == 100
    with pytest.raises(ValueError, match="n_eigs"):
        SemanticSoftSegmentationParams(n_eigs=0)
    with pytest.raises(TypeError, match="GraphParams"):
        SemanticSoftSegmentationParams(graph={})
    with pytest.raises(ValueError, match="preconditioner"):
        SemanticSoftSegmentationParams(preconditioner="ilu")


def test_bad_inputs(result):
    image, _ = result
    with pytest.raises(ValueError, match="n_segments"):
        semantic_soft_segments(image, n_segments=0)
    with pytest.raises(ValueError, match="n_segments"):
        semantic_soft_segments(image, n_segments=41)
    with pytest.raises(ValueError, match="mode"):
        semantic_soft_segments(image, mode="turbo")
    with pytest.raises(ValueError, match="features"):
        semantic_soft_segments(image, features=np.zeros((10, 10, 3)))
    with pytest.raises(ValueError, match="NaN"):
        semantic_soft_segments(image, features=np.full(image.shape, np.nan))
    with pytest.raises(TypeError, match="params"):
        semantic_soft_segments(image, params=GraphParams())
    with pytest.raises(ValueError, match="NaN"):
        semantic_soft_segments(np.full((20, 20, 3), np.nan))
    with pytest.raises(ValueError, match="35 pixels"):
        semantic_soft_segments(image[:5, :7])


def test_bad_device(result):
    image, _ = result
    with pytest.raises(ValueError, match="device must be"):
        semantic_soft_segments(image, device="cuda")


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["full", "fast"])
def test_gpu_pipeline(result, mode):
    """The whole method on the GPU: five non-trivial layers that sum to one, NumPy arrays
    back, the same eigenvalues as the CPU run and layers close to it."""
    image, cpu = result
    layers = semantic_soft_segments(image, mode=mode, device="gpu", keep_intermediates=True)
    alphas = layers.alphas
    assert isinstance(alphas, np.ndarray) and alphas.shape == (90, 120, 5)
    assert np.abs(alphas.sum(axis=2) - 1).max() < 1e-4
    assert np.all((alphas > 0.5).mean(axis=(0, 1)) > 0.005)
    assert isinstance(layers.intermediates["eigvecs"], np.ndarray)
    assert "to device" in layers.intermediates["timings"]
    if mode == "full":
        np.testing.assert_allclose(layers.intermediates["eigvals"], cpu.intermediates["eigvals"],
                                   rtol=0, atol=1e-8 * np.abs(cpu.intermediates["eigvals"]).max())
