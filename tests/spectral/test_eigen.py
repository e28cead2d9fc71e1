"""Tests of unmix.spectral.eigen (spec sss.md §9, §18): smallest-magnitude eigenpairs.

Oracles: dense LAPACK (scipy.linalg.eigh) on a tiny real Laplacian, and SciPy's own
shift-invert ARPACK (eigsh with sigma) on a small one. Eigenvectors are compared as
subspaces (principal angles), never column by column (§9).
"""


import numpy as np
import pytest
import scipy.linalg as la
import scipy.sparse as sp
import scipy.sparse.linalg as sla
import skimage.data
import skimage.transform

from unmix.exceptions import ConvergenceWarning
from unmix.spectral import smallest_eigenpairs
from unmix.spectral.eigen import eigen_residuals

METHODS = ["dense", "shift-invert", "lobpcg"]


def _image(shape):
    img = skimage.data.coffee().astype(np.float64) / 255.0
    return skimage.transform.resize(img, shape, anti_aliasing=True)


def _handmade_laplacian(img):
    """Fallback when unmix.graph is unavailable: L_M + negative long-range edges."""
    import pymatting

    H, W = img.shape[:2]
    L = pymatting.cf_laplacian(img, 1e-7, 1).tocsr()
    rng = np.random.default_rng(1)
    n = H * W
    i = rng.integers(0, n, 60)
    j = rng.integers(0, n, 60)
    keep = i != j
    w = rng.uniform(-1, 1, keep.sum())
    Ws = sp.coo_matrix((w, (i[keep], j[keep])), shape=(n, n)).tocsr()
    Ws = Ws + Ws.T
    return (L + 0.01 * (sp.diags(np.asarray(Ws.sum(1)).ravel()) - Ws)).tocsr()


def _laplacian(shape, n_superpixels):
    img = _image(shape)
    try:
        from unmix.graph import GraphParams, sss_laplacian
    except ImportError:  # pragma: no cover - graph stage missing
        return _handmade_laplacian(img)
    params = GraphParams(n_superpixels=n_superpixels)
    # The image itself serves as a 3-channel feature map (spec §2: features are injectable).
    return sss_laplacian(img, img, params=params).tocsr()


@pytest.fixture(scope="module")
def tiny():
    shape = (24, 32)
    return _laplacian(shape, 60), shape


@pytest.fixture(scope="module")
def tiny_dense(tiny):
    """Full dense spectrum of the tiny L (LAPACK is the oracle; computed once)."""
    L, _ = tiny
    return la.eigh(L.toarray())


@pytest.fixture(scope="module")
def small():
    shape = (60, 80)
    return _laplacian(shape, 150), shape


def _smallest_magnitude_dense(full, k):
    vals, vecs = full
    o = np.argsort(np.abs(vals))[:k]
    o = o[np.argsort(vals[o])]
    return vals[o], vecs[:, o]


def _max_sin_angle(U, V):
    """Largest sine of the principal angles between span(U) and span(V)."""
    return float(np.sin(la.subspace_angles(U, V)).max())


def test_tiny_laplacian_is_indefinite_and_singular(tiny, tiny_dense):
    L, _ = tiny
    assert abs(L @ np.ones(L.shape[0])).max() < 1e-9
    vals = tiny_dense[0]
    assert vals[0] < -1e-8, "the test matrix should be indefinite (spec §6)"


@pytest.mark.parametrize("method", METHODS)
def test_matches_dense_eigh(tiny, tiny_dense, method):
    L, shape = tiny
    k = 20
    ref_vals, ref_vecs = _smallest_magnitude_dense(tiny_dense, k)
    # Choose k at a spectral gap so that the k-dimensional subspace is well defined.
    vals, vecs, res = smallest_eigenpairs(L, k, method=method, shape=shape,
                                          return_residuals=True)
    assert vals.shape == (k,) and vecs.shape == (L.shape[0], k)
    assert np.all(np.diff(vals) >= 0)
    scale = np.abs(ref_vals).max()
    np.testing.assert_allclose(vals, ref_vals, rtol=0, atol=1e-8 * scale)
    assert res.max() <= 1e-6
    np.testing.assert_allclose(res, eigen_residuals(L, vals, vecs), rtol=1e-6, atol=1e-15)
    gap = np.sort(np.abs(tiny_dense[0]))[k] - np.abs(ref_vals).max()
    if gap > 1e-6 * scale:
        assert _max_sin_angle(vecs, ref_vecs) < 1e-5
    # Orthonormal columns.
    np.testing.assert_allclose(vecs.T @ vecs, np.eye(k), atol=1e-8)
    # λ = 0 with the constant vector is in the set (spec §8–9).
    one = np.ones((L.shape[0], 1)) / np.sqrt(L.shape[0])
    assert np.linalg.norm(one - vecs @ (vecs.T @ one)) < 1e-6
    # Slightly negative eigenvalues belong to the set.
    assert vals[0] < 0


@pytest.mark.parametrize(
    "method", ["shift-invert", pytest.param("lobpcg", marks=pytest.mark.slow)]
)
def test_small_matches_scipy_shift_invert(small, method):
    L, shape = small
    k = 30 if method == "shift-invert" else 12  # LOBPCG+AMG is slow; keep the file fast
    mu, V = sla.eigsh(L.tocsc(), k=k + 2, sigma=-1e-6, which="LM")
    o = np.argsort(np.abs(mu))[:k]
    ref_vals, ref_vecs = np.sort(mu[o]), V[:, o]
    vals, vecs, res = smallest_eigenpairs(L, k, method=method, shape=shape,
                                          return_residuals=True)
    scale = np.abs(ref_vals).max()
    np.testing.assert_allclose(vals, ref_vals, rtol=0, atol=1e-8 * scale)
    assert res.max() <= 1e-6
    # Subspace up to the part that is ill-determined by a near-tie at the k-th value.
    if abs(np.abs(mu[np.argsort(np.abs(mu))[k]]) - scale) > 1e-5 * scale:
        assert _max_sin_angle(vecs, ref_vecs) < 1e-4


@pytest.mark.parametrize("block_size", [2, 8])
def test_krylov_schur_matches_arpack(small, block_size):
    # Same shift-invert operator (multifrontal factor), two eigensolvers: ARPACK's
    # implicitly restarted Lanczos and our block Krylov–Schur.
    L, shape = small
    k = 30
    va, xa = smallest_eigenpairs(L, k, method="shift-invert", shape=shape,
                                 eigensolver="arpack", tol=1e-9)
    vk, xk, res = smallest_eigenpairs(L, k, method="shift-invert", shape=shape,
                                      eigensolver="krylov-schur", block_size=block_size,
                                      tol=1e-9, return_residuals=True)
    scale = np.abs(va).max()
    np.testing.assert_allclose(vk, va, rtol=0, atol=1e-10 * scale)
    assert res.max() <= 1e-9
    np.testing.assert_allclose(xk.T @ xk, np.eye(k), atol=1e-10)
    assert _max_sin_angle(xk, xa) < 1e-6


def test_bad_eigensolver(small):
    L, shape = small
    with pytest.raises(ValueError, match="eigensolver must be"):
        smallest_eigenpairs(L, 5, method="shift-invert", shape=shape, eigensolver="lanczos")


def test_shape_only_changes_ordering(small):
    L, shape = small
    a = smallest_eigenpairs(L, 10, method="shift-invert", shape=shape)[0]
    b = smallest_eigenpairs(L, 10, method="shift-invert")[0]
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * np.abs(a).max())


def test_auto_and_reproducible(small):
    L, shape = small
    v1, x1 = smallest_eigenpairs(L, 5, shape=shape, random_state=3)
    v2, x2 = smallest_eigenpairs(L, 5, shape=shape, random_state=3)
    np.testing.assert_array_equal(v1, v2)
    np.testing.assert_array_equal(x1, x2)


def test_dense_input_accepted(tiny):
    L, _ = tiny
    v_sparse = smallest_eigenpairs(L, 5, method="shift-invert")[0]
    v_dense = smallest_eigenpairs(L.toarray(), 5, method="shift-invert")[0]
    np.testing.assert_allclose(v_sparse, v_dense, atol=1e-12)


@pytest.mark.parametrize("method, kw", [("shift-invert", dict(eigensolver="arpack")),
                                        ("shift-invert", dict(eigensolver="krylov-schur")),
                                        ("lobpcg", dict(restart=1))])
def test_non_convergence_warns_and_returns_best(small, method, kw):
    L, shape = small
    with pytest.warns(ConvergenceWarning, match="max residual"):
        vals, vecs, res = smallest_eigenpairs(L, 30, method=method, shape=shape, maxiter=1,
                                              tol=1e-14, return_residuals=True, **kw)
    assert vals.shape == (30,) and vecs.shape == (L.shape[0], 30)
    assert np.all(np.isfinite(vals)) and np.all(np.isfinite(vecs)) and np.all(np.isfinite(res))


def test_convergence_warning_is_user_warning():
    assert issubclass(ConvergenceWarning, UserWarning)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(L=sp.random(5, 6, density=0.5, random_state=0)), ValueError, "square"),
        (dict(L=sp.csr_matrix(np.triu(np.ones((6, 6))))), ValueError, "symmetric"),
        (dict(L=sp.csr_matrix(np.diag([1.0, np.nan, 2, 3, 4, 5]))), ValueError, "non-finite"),
        (dict(L="matrix"), TypeError, "L must be"),
        (dict(k=0), ValueError, r"k must be an integer in \[1, 5\]"),
        (dict(k=6), ValueError, r"k must be an integer in \[1, 5\]"),
        (dict(k=2.5), TypeError, "k must be an integer"),
        (dict(method="arnoldi"), ValueError, "method must be one of"),
        (dict(shape=(2, 2)), ValueError, "shape must be"),
        (dict(tol=-1.0), ValueError, "tol must be"),
        (dict(maxiter="a"), TypeError, "maxiter must be an integer, got 'a'"),
        (dict(random_state=-1), ValueError, "random_state must be an integer in"),
        (dict(sigma=np.nan), ValueError, "sigma must be a finite number"),
        (dict(L=sp.csr_matrix(1e300 * np.eye(6))), ValueError, "scale L first"),
    ],
)
def test_bad_inputs(kwargs, exc, match):
    args = dict(L=sp.diags(np.arange(6.0)).tocsr(), k=2)
    args.update(kwargs)
    L = args.pop("L")
    with pytest.raises(exc, match=match):
        smallest_eigenpairs(L, **args)


# ----------------------------------------------------------------------------- devices
def test_gpu_unavailable_is_a_clear_error(small):
    """device='gpu' without CuPy or a CUDA device: an ImportError that says what is missing."""
    from unmix import _backend

    if _backend.gpu_available():
        pytest.skip("CuPy and a CUDA device are present")
    L, shape = small
    with pytest.raises(_backend.GPUUnavailableError, match=r"needs (CuPy|a CUDA device)"):
        smallest_eigenpairs(L, 10, shape=shape, device="gpu")


def test_bad_device(small):
    L, shape = small
    with pytest.raises(ValueError, match="device must be"):
        smallest_eigenpairs(L, 10, shape=shape, device="tpu")


@pytest.mark.gpu
@pytest.mark.parametrize("factor", ["cudss", "cpu"])
def test_gpu_matches_cpu(small, factor, monkeypatch):
    """Eigenvalues to 1e-8 relative and the same eigenspace, with the cuDSS factor and
    with the CPU factor the GPU path falls back to without it; NumPy in, NumPy out."""
    from unmix.linalg import cudss

    if factor == "cudss" and not cudss.cudss_available():
        pytest.skip("nvmath-python with cuDSS is not installed")
    if factor == "cpu":
        monkeypatch.setattr(cudss, "cudss_available", lambda: False)
    L, shape = small
    k = 30
    v_cpu, x_cpu = smallest_eigenpairs(L, k, shape=shape, tol=1e-9)
    v_gpu, x_gpu, res = smallest_eigenpairs(L, k, shape=shape, tol=1e-9, device="gpu",
                                            return_residuals=True)
    assert isinstance(x_gpu, np.ndarray)
    scale = np.abs(v_cpu).max()
    np.testing.assert_allclose(v_gpu, v_cpu, rtol=0, atol=1e-8 * scale)
    assert res.max() <= 1e-9
    np.testing.assert_allclose(res, eigen_residuals(L, v_gpu, x_gpu), rtol=1e-6, atol=1e-15)
    np.testing.assert_allclose(x_gpu.T @ x_gpu, np.eye(k), atol=1e-10)
    assert _max_sin_angle(x_gpu, x_cpu) < 1e-6


@pytest.mark.gpu
def test_gpu_cupy_in_cupy_out(small):
    import cupy
    import cupyx.scipy.sparse as csp

    L, shape = small
    vals, vecs = smallest_eigenpairs(csp.csr_matrix(L), 12, shape=shape)
    assert isinstance(vecs, cupy.ndarray) and vecs.shape == (L.shape[0], 12)
    ref_vals, ref_vecs = smallest_eigenpairs(L, 12, shape=shape)
    np.testing.assert_allclose(vals, ref_vals, rtol=0, atol=1e-8 * np.abs(ref_vals).max())
    assert _max_sin_angle(vecs.get(), ref_vecs) < 1e-5


@pytest.mark.gpu
def test_gpu_cpu_only_methods_refused(small):
    L, shape = small
    with pytest.raises(ValueError, match="CPU only"):
        smallest_eigenpairs(L, 10, shape=shape, method="lobpcg", device="gpu")
    with pytest.raises(ValueError, match="CPU only"):
        smallest_eigenpairs(L, 10, shape=shape, eigensolver="arpack", device="gpu")


def test_gpu_fallback_logic_on_the_cpu_backend(small, monkeypatch):
    """The GPU path without cuDSS (the CPU factor's solves, vectors in its elimination
    order, undone by an index array) gives the CPU's eigenpairs when run with NumPy."""
    from unmix._backend import get_backend
    from unmix.linalg import cudss
    from unmix.spectral import eigen

    monkeypatch.setattr(cudss, "cudss_available", lambda: False)
    L, shape = small
    k = 20
    n = L.shape[0]
    A = (L + 1e-6 * sp.identity(n, format="csr")).tocsr()
    vals, vecs = eigen._shift_invert_gpu(A, k, k + 2, 1e-9, np.random.default_rng(0), 100, shape,
                                         -1e-6, None, 8, get_backend("cpu"))
    ref_vals, ref_vecs = smallest_eigenpairs(L, k, shape=shape, tol=1e-9)
    np.testing.assert_allclose(vals, ref_vals, rtol=0, atol=1e-8 * np.abs(ref_vals).max())
    assert _max_sin_angle(vecs, ref_vecs) < 1e-6
    assert eigen_residuals(L, vals, vecs / np.linalg.norm(vecs, axis=0)).max() < 1e-8
