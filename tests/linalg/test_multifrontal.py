"""Tests of unmix.linalg.multifrontal: multifrontal factorisation on a separator tree.

Oracle: scipy.sparse.linalg.spsolve (SuperLU) on real SSS Laplacians, SPD (L + I·c) and
indefinite (L − σI with σ = −1e-6, the shift-invert matrix of spec sss.md §9).
"""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from unmix.graph import sss_laplacian, superpixels
from unmix.image import example_image
from unmix.linalg import multifrontal
from unmix.linalg.multifrontal import NotPositiveDefiniteError, factorize
from unmix.linalg.ordering import grid_nested_dissection


@pytest.fixture(scope="module", params=[("coffee", (24, 32), 60), ("astronaut", (30, 36), 80)])
def sss(request):
    name, shape, n_seg = request.param
    image = example_image(name, shape)
    L = sss_laplacian(image, image, superpixels(image, n_segments=n_seg)).tocsr()
    lam_min = np.linalg.eigvalsh(L.toarray())[0]
    assert lam_min < -1e-6  # the negative semantic affinities make L indefinite (§6)
    return L, shape


def relres(A, x, b):
    return np.linalg.norm(A @ x - b) / np.linalg.norm(b)


@pytest.mark.parametrize("shift", [-1e-6, -1.0], ids=["indefinite", "spd"])
@pytest.mark.parametrize("root_method", ["lu", "ldl"])
def test_solves_match_spsolve(sss, shift, root_method):
    L, shape = sss
    n = L.shape[0]
    A = (L - shift * sp.identity(n)).tocsr()
    tree = grid_nested_dissection(shape, L, leaf_size=32)
    assert tree.n_nodes > 7  # a real tree, not one dense front
    F = factorize(A, tree, root_method=root_method)
    rng = np.random.default_rng(0)
    b = rng.standard_normal(n)
    x = F.solve(b)
    ref = spsolve(A.tocsc(), b)
    assert x.shape == (n,)
    assert relres(A, x, b) < 1e-10
    assert np.linalg.norm(x - ref) / np.linalg.norm(ref) < 1e-7
    # Blocks: the Numba sweeps (few columns) and the BLAS-3 path (many).
    for m in (3, 20):
        B = rng.standard_normal((n, m))
        X = F.solve(B)
        assert X.shape == (n, m)
        assert relres(A, X, B) < 1e-10
        np.testing.assert_allclose(X[:, 0], F.solve(B[:, 0]), rtol=0,
                                   atol=1e-9 * np.abs(X[:, 0]).max())
        # In the elimination order (as an iterative method runs), from a Fortran block.
        Xp = F.solve(np.asfortranarray(B[tree.perm]), permuted=True)
        np.testing.assert_allclose(Xp, X[tree.perm], rtol=0, atol=1e-12 * np.abs(X).max())
    assert F.nnz > 0 and F.nbytes > 0


@pytest.fixture
def threaded_sweeps(monkeypatch):
    """Factors made now sweep their subtrees in three concurrent parts, however small."""
    monkeypatch.setattr(multifrontal, "_PARALLEL_MIN_ENTRIES", 0)
    monkeypatch.setattr(multifrontal, "_SWEEP_PARTS", 3)


def test_threaded_sweeps_match_one_thread(sss, threaded_sweeps):
    L, shape = sss
    n = L.shape[0]
    A = (L + 1e-6 * sp.identity(n)).tocsr()
    tree = grid_nested_dissection(shape, L, leaf_size=32)
    threaded = factorize(A, tree)
    # The root of a grid dissection has two subtrees: two concurrent sweeps.
    assert len(threaded._groups) == 2
    serial = factorize(A, tree)
    serial._groups = [np.concatenate(serial._groups)]
    rng = np.random.default_rng(1)
    for m in (1, 8):
        B = rng.standard_normal((n, m))
        X = threaded.solve(B)
        assert relres(A, X, B) < 1e-10
        # Only the order of the root updates' sums differs.
        np.testing.assert_allclose(X, serial.solve(B), rtol=0, atol=1e-12 * np.abs(X).max())


def test_non_positive_definite_block_raises(sss):
    L, shape = sss
    n = L.shape[0]
    # A shift far below zero makes L_M − σI, hence the non-root pivot blocks, indefinite.
    tree = grid_nested_dissection(shape, L, leaf_size=32)
    A = (L - 0.5 * sp.identity(n)).tocsr()
    with pytest.raises(NotPositiveDefiniteError, match="not positive definite"):
        factorize(A, tree)
    assert issubclass(NotPositiveDefiniteError, np.linalg.LinAlgError)


def test_tree_that_does_not_dissect_raises(sss):
    L, shape = sss
    n = L.shape[0]
    tree = grid_nested_dissection(shape, radius=2, leaf_size=32)  # ignores long edges
    with pytest.raises(ValueError, match="not a nested dissection"):
        factorize((L + sp.identity(n)).tocsr(), tree)


def test_bad_inputs(sss):
    L, shape = sss
    tree = grid_nested_dissection(shape, L)
    with pytest.raises(TypeError, match="A must be"):
        factorize(L.toarray(), tree)
    with pytest.raises(ValueError, match="root_method"):
        factorize(L, tree, root_method="qr")
    with pytest.raises(ValueError, match="tree orders"):
        factorize(L[:-1, :-1], tree)
    F = factorize((L + sp.identity(L.shape[0])).tocsr(), tree)
    with pytest.raises(ValueError, match="b must have shape"):
        F.solve(np.ones(3))


@pytest.mark.parametrize("blobs", [
    # Two pieces far from each other: parts of the dissection touch no ancestor.
    [(slice(2, 8), slice(2, 8)), (slice(20, 27), slice(30, 38))],
    # A ring around the centre: the top separator strip cuts it in two places only.
    [(slice(5, 25), slice(5, 8)), (slice(5, 25), slice(32, 35)),
     (slice(5, 8), slice(5, 35)), (slice(22, 25), slice(5, 35))],
])
@pytest.mark.parametrize("threads", [False, True], ids=["one-thread", "threaded"])
def test_masked_grid_with_disconnected_pieces(blobs, threads, request):
    """Fronts whose boundary is empty, and an empty root, factor and solve exactly."""
    if threads:
        request.getfixturevalue("threaded_sweeps")
    H, W = 30, 40
    mask = np.zeros((H, W), dtype=bool)
    for rows, cols in blobs:
        mask[rows, cols] = True
    n = int(mask.sum())
    # A 5×5-stencil SPD matrix on the masked pixels (grid Laplacian + identity).
    ys, xs = np.nonzero(mask)
    index = -np.ones((H, W), dtype=np.int64)
    index[ys, xs] = np.arange(n)
    rows, cols = [], []
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            y, x = ys + dy, xs + dx
            ok = (y >= 0) & (y < H) & (x >= 0) & (x < W)
            j = index[y[ok].clip(0, H - 1), x[ok].clip(0, W - 1)]
            keep = j >= 0
            rows.append(np.arange(n)[ok][keep])
            cols.append(j[keep])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    W_ = sp.csr_matrix((np.full(rows.size, 0.1), (rows, cols)), shape=(n, n))
    A = (sp.diags(np.asarray(W_.sum(axis=1)).ravel() + 1.0) - W_).tocsr()
    tree = grid_nested_dissection((H, W), radius=2, pixels=mask, leaf_size=16)
    b = np.random.default_rng(0).normal(size=n)
    np.testing.assert_allclose(factorize(A, tree).solve(b), spsolve(A.tocsc(), b),
                               rtol=1e-10, atol=1e-12)
