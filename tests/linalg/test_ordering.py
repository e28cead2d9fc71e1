"""Tests of unmix.linalg.ordering: grid nested dissection and its separator tree.

Invariants: the order is a permutation; nodes own contiguous slices in post-order with
the root last; the tree is a nested dissection of the matrix graph (every entry joins a
node to itself, an ancestor or a descendant); long-range variables land in the root.
"""

import numpy as np
import pytest
import scipy.sparse as sp

from unmix.graph import matting_laplacian, sss_laplacian, superpixels
from unmix.image import example_image
from unmix.linalg.ordering import SeparatorTree, grid_nested_dissection, stencil_radius


@pytest.fixture(scope="module")
def sss():
    image = example_image("coffee", (24, 32))
    L = sss_laplacian(image, image, superpixels(image, n_segments=60)).tocsr()
    return L, (24, 32)


def ancestors_or_self(tree):
    """Boolean matrix anc[s, t]: s is t or an ancestor of t."""
    nn = tree.n_nodes
    anc = np.eye(nn, dtype=bool)
    for t in range(nn - 1, -1, -1):  # parents are numbered after their children
        p = tree.parent[t]
        if p >= 0:
            anc[:, t] |= anc[:, p]
    return anc


def assert_valid(tree, A):
    n = A.shape[0]
    assert isinstance(tree, SeparatorTree)
    np.testing.assert_array_equal(np.sort(tree.perm), np.arange(n))
    assert tree.node_ptr[0] == 0 and tree.node_ptr[-1] == n
    assert np.all(np.diff(tree.node_ptr) >= 0)
    assert tree.parent[-1] == -1
    assert np.all(tree.parent[:-1] > np.arange(tree.n_nodes - 1))  # post-order
    # Subtrees own contiguous ranges of nodes (first_descendant .. t).
    first = tree.first_descendant()
    for t in range(tree.n_nodes):
        kids = np.flatnonzero(tree.parent == t)
        if kids.size:
            assert first[t] == first[kids].min()
    # Nested dissection: every entry joins a node to an ancestor, a descendant or itself,
    # so the boundary of each node's front lies in its ancestors.
    owner = np.empty(n, dtype=np.int64)
    owner[tree.perm] = tree.owner()
    C = sp.coo_matrix(A)
    s, t = owner[C.row], owner[C.col]
    anc = ancestors_or_self(tree)
    assert np.all(anc[s, t] | anc[t, s])


def test_sss_laplacian_tree(sss):
    L, shape = sss
    tree = grid_nested_dissection(shape, L)
    assert tree.radius == 2  # the 5×5 stencil of the matting Laplacian (window radius 1)
    assert_valid(tree, L)
    # The superpixel centroid pixels (long edges) are in the root.
    assert 0 < tree.long_range.size <= 60
    assert np.isin(tree.long_range, tree.variables(tree.root)).all()
    assert tree.n_nodes > 3


def test_stencil_radius_of_matting_laplacian():
    image = example_image("coffee", (20, 24))
    r, far = stencil_radius(matting_laplacian(image), (20, 24))
    assert r == 2 and not far.any()
    r, far = stencil_radius(matting_laplacian(image, radius=2), (20, 24))
    assert r == 4 and not far.any()


def test_masked_grid():
    """A subset of pixels (as in matting's reduced system on the unknown pixels)."""
    H, W = 30, 40
    image = example_image("coffee", (H, W))
    yy, xx = np.mgrid[:H, :W]
    mask = (yy - 15) ** 2 / 14 ** 2 + (xx - 20) ** 2 / 19 ** 2 < 1
    mask[14:16, :] = False  # a gap: some strips may come out empty
    idx = np.flatnonzero(mask.ravel())
    A = matting_laplacian(image).tocsr()[idx][:, idx]
    tree = grid_nested_dissection((H, W), A, pixels=mask, leaf_size=16)
    assert_valid(tree, A)
    tree2 = grid_nested_dissection((H, W), radius=2, pixels=mask, leaf_size=16)
    np.testing.assert_array_equal(tree.perm, tree2.perm)


def test_masked_thin_ring():
    # A trimap's unknown band in a large grid: most rectangles are empty (they
    # are skipped, not cut down to leaves); every node but the root holds
    # variables and leaves are not smaller than they need to be.
    yy, xx = np.mgrid[:300, :400]
    ring = np.abs(np.hypot(yy - 150, xx - 200) - 100) < 4
    tree = grid_nested_dissection(ring.shape, radius=2, pixels=ring)
    sizes = np.diff(tree.node_ptr)
    assert np.all(sizes[:-1] > 0) and sizes.sum() == ring.sum()
    assert np.array_equal(np.sort(tree.perm), np.arange(ring.sum()))
    assert tree.n_nodes < ring.sum() / 8


def test_explicit_radius_and_long_range(sss):
    L, shape = sss
    far = np.zeros(L.shape[0], dtype=bool)
    far[[5, 100, 700]] = True
    tree = grid_nested_dissection(shape, radius=3, long_range=far, leaf_size=20)
    np.testing.assert_array_equal(tree.perm[-3:], [5, 100, 700])
    assert tree.radius == 3
    np.testing.assert_array_equal(np.sort(tree.perm), np.arange(L.shape[0]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(shape=(5,)), "shape must be"),
        (dict(shape=(4, 4)), "the matrix has"),
        (dict(shape=(24, 32), A=None), "needs A or radius"),
        (dict(shape=(24, 32), A=None, radius=0), "radius must be"),
        (dict(shape=(24, 32), leaf_size=0), "leaf_size must be"),
        (dict(shape=(24, 32), pixels=np.ones((2, 2), bool)), "pixels must be"),
        (dict(shape=(24, 32), long_range=np.ones(3, bool), radius=2), "long_range must be"),
    ],
)
def test_bad_inputs(sss, kwargs, match):
    L, _ = sss
    args = dict(A=L)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        grid_nested_dissection(args.pop("shape"), args.pop("A"), **args)
