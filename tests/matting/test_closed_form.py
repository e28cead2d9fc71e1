"""Tests of unmix.matting.closed_form: the reduced closed-form matting system.

Oracles: pymatting's ``estimate_alpha_cf`` on real photographs, a dense solve
of the reduced system written here from the full Laplacian, and synthetic
composites whose alpha is known.
"""

import doctest
import warnings

import numpy as np
import pytest
import scipy.sparse
from scipy.ndimage import binary_dilation, binary_erosion, gaussian_filter

from unmix.exceptions import ConvergenceWarning
from unmix.graph import matting_laplacian
from unmix.matting import closed_form, closed_form_matting, trimap_from_alpha


def _luminance_trimap(image, band=4):
    """A trimap of a photograph: its brighter half (smoothed luminance above the
    median) as foreground, eroded and dilated by ``band`` (uint8 0/128/255)."""
    grey = gaussian_filter(image.mean(axis=2), 2.0)
    mask = grey > np.median(grey)
    trimap = np.full(mask.shape, 128, np.uint8)
    trimap[binary_erosion(mask, iterations=band)] = 255
    trimap[~binary_dilation(mask, iterations=band)] = 0
    return trimap


def _soft_disc(shape, softness=4.0):
    """A disc-shaped matte with a linear soft edge ``softness`` pixels wide."""
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    return np.clip((0.3 * min(h, w) - r) / softness + 0.5, 0.0, 1.0)


def _dense_reference(image, trimap, eps=1e-7, radius=1):
    """α from a dense solve of L_UU α_U = −L_UK α_K with the full Laplacian."""
    t = trimap / 255.0
    known = (t >= 0.9) | (t <= 0.1)
    L = matting_laplacian(image, eps, radius).toarray()
    u, k = ~known.ravel(), known.ravel()
    alpha = (t >= 0.9).astype(float).ravel()
    alpha[u] = np.linalg.solve(L[np.ix_(u, u)], -L[np.ix_(u, k)] @ alpha[k])
    return np.clip(alpha, 0, 1).reshape(t.shape)


@pytest.mark.parametrize("name, shape", [("coffee", (120, 160)), ("astronaut", (150, 150))])
def test_equals_pymatting_on_photographs(photo, name, shape):
    pymatting = pytest.importorskip("pymatting")
    image = photo(name, shape)
    trimap = _luminance_trimap(image)
    alpha, info = closed_form_matting(image, trimap, return_info=True)
    peer = pymatting.estimate_alpha_cf(np.array(image), trimap / 255.0)
    assert info.converged and info.iterations <= 2 and info.n_unknown == np.sum(trimap == 128)
    assert np.abs(alpha - peer).max() < 1e-4


@pytest.mark.parametrize("radius", [1, 2])
def test_equals_a_dense_solve(photo, radius):
    image = photo("chelsea", (32, 32))
    trimap = trimap_from_alpha(_soft_disc((32, 32)), band=2)
    expected = _dense_reference(image, trimap, radius=radius)
    alpha = closed_form_matting(image, trimap, radius=radius, rtol=1e-12)
    np.testing.assert_allclose(alpha, expected, atol=1e-8)


def test_recovers_a_synthetic_composite():
    # Constant foreground and background colours satisfy the colour-line model
    # exactly, so closed-form matting recovers the true soft matte.
    truth = _soft_disc((48, 64), softness=6.0)
    fg, bg = np.array([0.9, 0.6, 0.2]), np.array([0.1, 0.3, 0.7])
    image = truth[..., None] * fg + (1 - truth[..., None]) * bg
    trimap = trimap_from_alpha(truth, band=3)
    alpha = closed_form_matting(image, trimap)
    assert np.abs(alpha - truth).max() < 1e-3


def test_recovers_a_composite_of_photographs(photo):
    truth = _soft_disc((64, 64), softness=3.0)
    fg, bg = photo("astronaut", (64, 64)), photo("coffee", (64, 64))
    image = truth[..., None] * fg + (1 - truth[..., None]) * bg
    trimap = trimap_from_alpha(truth, band=2)
    alpha = closed_form_matting(image, trimap)
    unknown = trimap == 128
    error = np.abs(alpha - truth)[unknown].mean()
    # Textured photographs break the colour-line model in places; still far
    # better than the uninformed guess α = 1/2 on the unknown region.
    assert error < 0.1 and error < 0.3 * np.abs(0.5 - truth)[unknown].mean()


def test_trimap_conventions_agree(photo):
    image = photo("coffee", (40, 48))
    trimap = _luminance_trimap(image, band=3)
    reference = closed_form_matting(image, trimap)
    np.testing.assert_array_equal(closed_form_matting(image, trimap / 255.0), reference)
    np.testing.assert_array_equal(closed_form_matting(image, trimap.astype(np.float32) / 255),
                                  reference)
    np.testing.assert_array_equal(closed_form_matting(image.astype(np.float32), trimap),
                                  closed_form_matting(image.astype(np.float32).astype(float),
                                                      trimap))
    # Known pixels are exact 0 and 1, unless the trimap's own values are asked for.
    soft = trimap / 255.0
    soft[trimap == 255] = 0.95
    alpha = closed_form_matting(image, soft)
    assert set(np.unique(alpha[trimap != 128])) == {0.0, 1.0}
    kept = closed_form_matting(image, soft, keep_trimap_values=True)
    assert np.all(kept[trimap == 255] == 0.95)
    np.testing.assert_array_equal(kept[trimap == 128], alpha[trimap == 128])


def test_empty_unknown_region_needs_no_solve():
    image = np.random.default_rng(0).random((10, 12, 3))
    trimap = np.zeros((10, 12), np.uint8)
    trimap[:, 6:] = 255
    alpha, info = closed_form_matting(image, trimap, return_info=True)
    np.testing.assert_array_equal(alpha, trimap / 255.0)
    assert info.n_unknown == 0 and info.iterations == 0


def test_forced_non_convergence_warns_and_returns_the_best_iterate(photo, monkeypatch):
    # A preconditioner that is not the factor: PCG cannot converge in 1 step.
    image = photo("coffee", (32, 40))
    trimap = _luminance_trimap(image, band=3)

    monkeypatch.setattr(closed_form, "_factor",
                        lambda A, tree, info, backend: lambda r: r / A.diagonal())
    with pytest.warns(ConvergenceWarning, match="returning the iterate"):
        alpha, info = closed_form_matting(image, trimap, maxiter=2, return_info=True)
    assert not info.converged and info.iterations == 2 and 0 < info.residual < 1
    assert np.isfinite(alpha).all() and alpha.min() >= 0 and alpha.max() <= 1


def test_singular_system_falls_back_to_a_shifted_factor(monkeypatch):
    calls = []
    real = closed_form.factorize

    def failing_once(A, tree):
        calls.append(A)
        if len(calls) == 1:
            raise np.linalg.LinAlgError("forced")
        return real(A, tree)

    monkeypatch.setattr(closed_form, "factorize", failing_once)
    truth = _soft_disc((24, 24))
    image = np.repeat(truth[..., None], 3, axis=2)
    _, info = closed_form_matting(image, trimap_from_alpha(truth, band=1), return_info=True)
    assert info.shift > 0 and info.converged and len(calls) == 2
    assert scipy.sparse.issparse(calls[1]) and calls[1].shape == calls[0].shape


def test_bad_inputs(photo):
    image = photo("coffee", (20, 24))
    trimap = np.full((20, 24), 128, np.uint8)
    with pytest.raises(ValueError, match="no foreground"):
        closed_form_matting(image, trimap)
    trimap[:, :4], trimap[:, -4:] = 0, 255
    with pytest.raises(ValueError, match="shape"):
        closed_form_matting(image, trimap[:, :-1])
    with pytest.raises(ValueError, match="rtol"):
        closed_form_matting(image, trimap, rtol=0)
    with pytest.raises(ValueError, match="maxiter"):
        closed_form_matting(image, trimap, maxiter=0)
    with pytest.raises(ValueError, match="eps"):
        closed_form_matting(image, trimap, eps=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        closed_form_matting(image, trimap)  # a valid call warns about nothing


def test_bad_device(photo):
    image = photo("coffee", (20, 24))
    trimap = np.full((20, 24), 128, np.uint8)
    trimap[:, :4], trimap[:, -4:] = 0, 255
    with pytest.raises(ValueError, match="device must be"):
        closed_form_matting(image, trimap, device="cuda")


@pytest.mark.gpu
@pytest.mark.parametrize("name, shape", [("coffee", (120, 160)), ("astronaut", (150, 150))])
def test_gpu_matches_cpu(photo, name, shape):
    """cuDSS Cholesky + PCG on CuPy arrays give the CPU's matte (1e-6) and a NumPy array."""
    from unmix.linalg.cudss import cudss_available

    if not cudss_available():
        pytest.skip("nvmath-python with cuDSS is not installed")
    image = photo(name, shape)
    trimap = _luminance_trimap(image)
    cpu, cpu_info = closed_form_matting(image, trimap, return_info=True)
    gpu, info = closed_form_matting(image, trimap, return_info=True, device="gpu")
    assert isinstance(gpu, np.ndarray) and gpu.shape == cpu.shape
    assert info.converged and info.iterations <= 2 and info.shift == 0 and info.factor_nnz > 0
    assert np.abs(gpu - cpu).max() < 1e-6
    np.testing.assert_array_equal(gpu[trimap != 128], cpu[trimap != 128])


def test_docstring_examples():
    assert doctest.testmod(closed_form).failed == 0
