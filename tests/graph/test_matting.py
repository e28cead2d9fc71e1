"""Tests of unmix.graph.matting: Levin's matting affinity and Laplacian.

Oracles: pymatting's ``cf_laplacian`` (same L_M, same ε/|ω| convention) on
well-conditioned photographs, and an extended-precision (``np.longdouble``)
per-window evaluation written here, which referees nearly flat windows where
float64 implementations disagree.
"""

import functools

import numpy as np
import pytest
import scipy.sparse

from unmix.graph.matting import matting_affinity, matting_laplacian


# --------------------------------------------------------------------------- #
# Helpers                                                                     #
# --------------------------------------------------------------------------- #


@functools.lru_cache(maxsize=None)
def _photo(name, shape):
    """A photograph from skimage.data, anti-aliased down to ``shape``."""
    import skimage.data
    import skimage.transform

    image = getattr(skimage.data, name)() / 255.0
    out = skimage.transform.resize(image, shape, anti_aliasing=True)
    out = np.ascontiguousarray(np.clip(out, 0.0, 1.0))
    out.setflags(write=False)
    return out


def _pymatting_laplacian(image, eps=1e-7, radius=1):
    """pymatting's cf_laplacian, made canonical (it stores out-of-image
    neighbours as explicit zeros in column 0)."""
    pymatting = pytest.importorskip("pymatting")
    # pymatting's eager signatures refuse read-only arrays: pass a copy.
    P = pymatting.cf_laplacian(np.array(image, dtype=np.float64, order="C"), eps, radius)
    P = scipy.sparse.csr_matrix((P.data, P.indices, P.indptr), shape=P.shape)
    P.sum_duplicates()
    return P


def _reference_laplacian(image, eps=1e-7, radius=1):
    """Dense L_M in extended precision, one window at a time (slow, obvious).

    L = Σ_k over interior windows of (δ_ij − (1 + d_iᵀ(Σ_k + ε/|ω| I)⁻¹ d_j)/|ω|)
    with d = I − μ_k and Σ_k the biased covariance; the 3×3 system is solved
    by Gauss–Jordan elimination with partial pivoting in np.longdouble.
    """
    if np.finfo(np.longdouble).eps > 1e-18:
        pytest.skip("np.longdouble is not an extended-precision type here")
    I = np.asarray(image, dtype=np.longdouble)
    h, w, _ = I.shape
    n = (2 * radius + 1) ** 2
    ids = np.arange(h * w).reshape(h, w)
    L = np.zeros((h * w, h * w), dtype=np.longdouble)
    one = np.longdouble(1)
    for ky in range(radius, h - radius):
        for kx in range(radius, w - radius):
            sl = np.s_[ky - radius : ky + radius + 1, kx - radius : kx + radius + 1]
            colours = I[sl].reshape(-1, 3)
            idx = ids[sl].ravel()
            d = colours - colours.mean(axis=0)
            S = d.T @ d / n + np.eye(3, dtype=np.longdouble) * (np.longdouble(eps) / n)
            A = np.concatenate([S, np.eye(3, dtype=np.longdouble)], axis=1)
            for c in range(3):
                piv = c + int(np.argmax(np.abs(A[c:, c])))
                A[[c, piv]] = A[[piv, c]]
                A[c] /= A[c, c]
                for row in range(3):
                    if row != c:
                        A[row] -= A[row, c] * A[c]
            G = (one + d @ A[:, 3:] @ d.T) / n
            L[np.ix_(idx, idx)] -= G
            L[idx, idx] += one
    return L


def _window_counts(h, w, radius):
    """Number of interior windows containing each pixel (row-major)."""
    def per_axis(m):
        k = np.arange(radius, m - radius)  # window centres
        y = np.arange(m)[:, None]
        return (np.abs(y - k[None, :]) <= radius).sum(axis=1)

    return np.outer(per_axis(h), per_axis(w)).ravel()


# --------------------------------------------------------------------------- #
# Agreement with pymatting on photographs                                     #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket"])
def test_equals_pymatting_on_photographs(name):
    image = _photo(name, (48, 64))
    L = matting_laplacian(image)
    P = _pymatting_laplacian(image)
    assert L.shape == P.shape == (48 * 64, 48 * 64)
    # Entries reach ~8; two float64 evaluations of the near-singular
    # ε/9-regularised covariances differ by ~1e-8 (measured 4e-9, 1e-8, 7e-10).
    assert abs(L).max() > 5.0
    assert abs(L - P).max() < 1e-7


def test_equals_pymatting_radius_2():
    image = _photo("coffee", (32, 40))
    L = matting_laplacian(image, radius=2)
    P = _pymatting_laplacian(image, radius=2)
    assert abs(L - P).max() < 1e-7


def test_equals_pymatting_other_eps():
    image = _photo("chelsea", (30, 36))
    L = matting_laplacian(image, eps=1e-4)
    P = _pymatting_laplacian(image, eps=1e-4)
    assert abs(L - P).max() < 1e-10


# --------------------------------------------------------------------------- #
# Accuracy against an extended-precision referee                              #
# --------------------------------------------------------------------------- #

# A 24×24 crop of the 64×64 astronaut holding clipped black background next to
# the bright suit: there Σ_k ≈ 0 and Σ_k + ε/9 I has condition numbers ~1e8.
# pymatting's closed-form 3×3 inverse is off by 8.6e-5 (r = 1) and 5.7e-5
# (r = 2) on it; unmix measures 2.1e-10 and 1.2e-10. The bound 1e-8 is the
# float64 floor of the problem itself: rounding Σ_k (entries up to ~0.3)
# perturbs it by ~1e-17, i.e. ~1e-9 relative to ε/9 ≈ 1.1e-8.


@functools.lru_cache(maxsize=None)
def _flat_crop():
    return np.ascontiguousarray(_photo("astronaut", (64, 64))[40:64, 40:64])


@pytest.mark.parametrize("radius", [1, 2])
def test_flat_windows_against_longdouble(radius):
    crop = _flat_crop()
    assert (crop.max(axis=2) < 1e-3).sum() > 30  # the clipped region is there
    R = _reference_laplacian(crop, radius=radius)
    err_unmix = float(np.abs(matting_laplacian(crop, radius=radius).toarray() - R).max())
    err_pymatting = float(
        np.abs(_pymatting_laplacian(crop, radius=radius).toarray() - R).max()
    )
    assert err_unmix < 1e-8
    assert err_unmix <= err_pymatting


def test_well_conditioned_against_longdouble():
    crop = np.ascontiguousarray(_photo("coffee", (48, 64))[10:30, 20:44])
    R = _reference_laplacian(crop)
    assert np.abs(matting_laplacian(crop).toarray() - R).max() < 1e-9


def test_thinnest_image_against_longdouble():
    # One row of windows: every pixel row touches a border.
    image = _photo("rocket", (3, 7))
    R = _reference_laplacian(image)
    assert np.abs(matting_laplacian(image).toarray() - R).max() < 1e-9
    image5 = _photo("rocket", (9, 5))
    R5 = _reference_laplacian(image5, radius=2)
    assert np.abs(matting_laplacian(image5, radius=2).toarray() - R5).max() < 1e-9


def test_constant_region():
    # Left half constant, right half a photograph: windows inside the constant
    # part have Σ_k = 0 and contribute exactly 1/|ω| to every pair.
    image = np.array(_photo("chelsea", (16, 20)))
    image[:, :9] = (0.2, 0.5, 0.7)
    R = _reference_laplacian(image)
    L = matting_laplacian(image)
    assert np.abs(L.toarray() - R).max() < 1e-9
    assert np.abs(L @ np.ones(L.shape[0])).max() < 1e-12


def test_constant_image_is_exact():
    # z_j = 0 in every window, so W_L[p, q] = (number of shared windows) / 9.
    image = np.full((6, 7, 3), 0.4)
    W = matting_affinity(image).toarray()
    h, w = 6, 7
    y, x = np.divmod(np.arange(h * w), w)

    def shared(a, b, m):
        lo = np.maximum(np.maximum(a, b) - 1, 1)
        hi = np.minimum(np.minimum(a, b) + 1, m - 2)
        return np.maximum(hi - lo + 1, 0)

    expected = shared(y[:, None], y[None, :], h) * shared(x[:, None], x[None, :], w) / 9.0
    assert np.abs(W - expected).max() < 1e-15


# --------------------------------------------------------------------------- #
# Structure and invariants                                                    #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("radius", [1, 2])
@pytest.mark.parametrize("func", [matting_laplacian, matting_affinity])
def test_csr_structure(func, radius):
    h, w = 11, 13
    image = _photo("coffee", (h, w))
    M = func(image, radius=radius)
    assert isinstance(M, scipy.sparse.csr_matrix)
    assert M.dtype == np.float64 and M.shape == (h * w, h * w)
    assert M.has_canonical_format and M.has_sorted_indices
    # Row p = (y, x) holds exactly the pixels within Chebyshev distance 2r.
    for p in range(h * w):
        y, x = divmod(p, w)
        cols = M.indices[M.indptr[p] : M.indptr[p + 1]]
        ys, xs = np.mgrid[
            max(y - 2 * radius, 0) : min(y + 2 * radius, h - 1) + 1,
            max(x - 2 * radius, 0) : min(x + 2 * radius, w - 1) + 1,
        ]
        np.testing.assert_array_equal(cols, (ys * w + xs).ravel())
    # A canonical copy built by SciPy is the same matrix.
    C = M.tocoo().tocsr()
    C.sum_duplicates()
    np.testing.assert_array_equal(C.indptr, M.indptr)
    np.testing.assert_array_equal(C.indices, M.indices)
    np.testing.assert_array_equal(C.data, M.data)


@pytest.mark.parametrize("name", ["coffee", "astronaut"])
def test_exactly_symmetric_and_rows_sum_to_zero(name):
    image = _photo(name, (40, 48))
    L = matting_laplacian(image)
    assert abs(L - L.T).max() == 0.0
    assert np.abs(L @ np.ones(L.shape[0])).max() < 1e-12
    W = matting_affinity(image)
    assert abs(W - W.T).max() == 0.0


@pytest.mark.parametrize("radius", [1, 2])
def test_affinity_row_sums_and_laplacian(radius):
    h, w = 24, 30
    image = _photo("rocket", (h, w))
    W = matting_affinity(image, radius=radius)
    L = matting_laplacian(image, radius=radius)
    row_sums = np.asarray(W.sum(axis=1)).ravel()
    np.testing.assert_allclose(row_sums, _window_counts(h, w, radius), rtol=0, atol=1e-11)
    # L_M = diag(W_L·1) − W_L (spec sss.md §5), same pattern.
    np.testing.assert_array_equal(L.indices, W.indices)
    D = scipy.sparse.diags(row_sums) - W
    assert abs(L - D).max() < 1e-11


def test_positive_semidefinite():
    image = np.random.default_rng(3).random((9, 10, 3))
    L = matting_laplacian(image).toarray()
    eigenvalues = np.linalg.eigvalsh(L)
    assert eigenvalues.min() > -1e-10
    assert abs(eigenvalues[0]) < 1e-10  # constants are in the null space


def test_independent_of_thread_count():
    import numba

    from unmix._numba import PARALLEL_MIN_ITEMS

    # Large enough for the parallel path, several bands of window rows.
    image = _photo("chelsea", (260, 256))
    assert 260 * 256 >= PARALLEL_MIN_ITEMS
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        L1 = matting_laplacian(image)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        L2 = matting_laplacian(image)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(L1.indptr, L2.indptr)
    np.testing.assert_array_equal(L1.indices, L2.indices)
    np.testing.assert_array_equal(L1.data, L2.data)
    assert abs(L2 - L2.T).max() == 0.0
    assert np.abs(L2 @ np.ones(L2.shape[0])).max() < 1e-12


# --------------------------------------------------------------------------- #
# Inputs                                                                      #
# --------------------------------------------------------------------------- #


def test_input_types_are_converted():
    image8 = (np.random.default_rng(0).random((9, 11, 3)) * 255).astype(np.uint8)
    ref = matting_laplacian(image8.astype(np.float64) / 255.0)
    assert abs(matting_laplacian(image8) - ref).max() == 0.0
    image = _photo("coffee", (9, 11))
    ref = matting_laplacian(image.astype(np.float32).astype(np.float64))
    assert abs(matting_laplacian(image.astype(np.float32)) - ref).max() == 0.0
    grey = image.mean(axis=2)
    assert abs(
        matting_laplacian(grey) - matting_laplacian(np.repeat(grey[:, :, None], 3, axis=2))
    ).max() == 0.0
    # Non-contiguous views are fine.
    wide = np.asarray(_photo("coffee", (9, 22)))
    view = wide[:, ::2]
    assert abs(matting_laplacian(view) - matting_laplacian(view.copy())).max() == 0.0


@pytest.mark.parametrize("func", [matting_laplacian, matting_affinity])
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"eps": 0.0}, ValueError, r"eps must be a finite number > 0, got 0\.0"),
        ({"eps": -1e-7}, ValueError, r"eps must be a finite number > 0, got -1e-07"),
        ({"eps": float("nan")}, ValueError, r"eps must be a finite number > 0, got nan"),
        ({"eps": float("inf")}, ValueError, r"eps must be a finite number > 0, got inf"),
        ({"eps": "1e-7"}, TypeError, r"eps must be a real number, got '1e-7'"),
        ({"radius": 0}, ValueError, r"radius must be an integer >= 1, got 0"),
        ({"radius": -2}, ValueError, r"radius must be an integer >= 1, got -2"),
        ({"radius": 1.0}, TypeError, r"radius must be an integer, got 1\.0"),
        ({"radius": True}, TypeError, r"radius must be an integer, got True"),
    ],
)
def test_bad_parameters(func, kwargs, error, match):
    image = _photo("coffee", (8, 8))
    with pytest.raises(error, match=match):
        func(image, **kwargs)


def test_numpy_scalar_parameters_accepted():
    image = _photo("coffee", (8, 8))
    ref = matting_laplacian(image, eps=1e-6, radius=1)
    got = matting_laplacian(image, eps=np.float64(1e-6), radius=np.int64(1))
    assert abs(got - ref).max() == 0.0


@pytest.mark.parametrize(
    "shape, radius",
    [((2, 10, 3), 1), ((10, 2, 3), 1), ((4, 9, 3), 2), ((9, 4, 3), 2), ((6, 6, 3), 3)],
)
def test_image_smaller_than_window(shape, radius):
    image = np.full(shape, 0.5)
    with pytest.raises(ValueError, match=r"image must have at least 2\*radius\+1 = \d+ rows"):
        matting_laplacian(image, radius=radius)


@pytest.mark.parametrize("shape", [(10,), (2, 3, 4, 3), (5, 5, 2)])
def test_wrong_ndim_or_channels(shape):
    with pytest.raises(ValueError, match="image must have shape"):
        matting_laplacian(np.zeros(shape))


def test_nan_image_rejected():
    image = np.full((5, 5, 3), 0.5)
    image[2, 2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        matting_affinity(image)


def test_eps_too_small_for_float64():
    # Grey windows have rank-1 covariances; ε = 1e-300 vanishes next to them.
    grey = _photo("coffee", (10, 10)).mean(axis=2)
    with pytest.raises(ValueError, match="eps=1e-300 is too small"):
        matting_laplacian(grey, eps=1e-300)


@pytest.mark.parametrize("radius", [1, 2])
def test_rows_are_exactly_those_of_the_full_matrix(radius):
    image = _photo("astronaut", (30, 40))
    L = matting_laplacian(image, radius=radius)
    rng = np.random.default_rng(0)
    for mask in (rng.random((30, 40)) < 0.1, np.zeros((30, 40), bool), np.ones((30, 40), bool)):
        mask[0, 0] = mask[-1, -1] = True  # corners: rows clipped at the border
        R = matting_laplacian(image, radius=radius, rows=mask)
        expected = L[mask.ravel()]
        assert R.shape == expected.shape and R.has_canonical_format
        np.testing.assert_array_equal(R.indptr, expected.indptr)
        np.testing.assert_array_equal(R.indices, expected.indices)
        np.testing.assert_array_equal(R.data, expected.data)  # bitwise: same windows, same order


def test_rows_must_be_a_mask_of_the_image():
    image = _photo("astronaut", (10, 12))
    with pytest.raises(ValueError, match="rows"):
        matting_laplacian(image, rows=np.ones((10, 11), bool))
    with pytest.raises(ValueError, match="rows"):
        matting_laplacian(image, rows=np.ones((10, 12)))
