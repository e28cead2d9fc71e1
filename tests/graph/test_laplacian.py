import numpy as np
import pytest
import scipy.sparse as sparse

from unmix.graph import (
    GraphParams,
    color_affinity,
    laplacian,
    matting_affinity,
    matting_laplacian,
    semantic_affinity,
    sss_laplacian,
    superpixels,
)


def random_affinity(n=30, seed=0):
    rng = np.random.default_rng(seed)
    W = sparse.random(n, n, density=0.2, random_state=rng) - 0.3 * sparse.random(
        n, n, density=0.05, random_state=rng
    )
    return (W + W.T).tocsr() + sparse.identity(n)  # identity keeps degrees positive


def test_unnormalized_laplacian_against_dense_formula():
    W = random_affinity()
    dense = W.toarray()
    expected = np.diag(dense.sum(axis=1)) - dense
    L = laplacian(W)
    assert sparse.isspmatrix_csr(L) and L.has_sorted_indices
    np.testing.assert_allclose(L.toarray(), expected, atol=1e-14)
    np.testing.assert_allclose(L @ np.ones(W.shape[0]), 0, atol=1e-13)


def test_normalized_laplacian_against_dense_formula():
    W = random_affinity()
    dense = W.toarray()
    degree = dense.sum(axis=1)
    assert (degree > 0).all()
    scale = np.diag(degree**-0.5)
    expected = scale @ (np.diag(degree) - dense) @ scale
    L = laplacian(W, normalized=True)
    np.testing.assert_allclose(L.toarray(), expected, atol=1e-13)
    np.testing.assert_allclose(L @ np.sqrt(degree), 0, atol=1e-12)


def test_laplacian_errors():
    with pytest.raises(TypeError, match="sparse"):
        laplacian(np.eye(3))
    with pytest.raises(ValueError, match="square"):
        laplacian(sparse.csr_matrix((3, 4)))
    with pytest.raises(ValueError, match="positive degrees"):
        laplacian(sparse.csr_matrix(-np.ones((3, 3))), normalized=True)
    with pytest.raises(ValueError, match="NaN"):
        laplacian(sparse.csr_matrix(np.full((3, 3), np.nan)))


@pytest.fixture
def scene(photo):
    image = photo("astronaut", (40, 40))
    features = np.ascontiguousarray(image[..., [1, 2, 0]])
    return image, features, superpixels(image, n_segments=60)


def test_sss_laplacian_is_the_sum_of_its_parts(scene):
    image, features, sp = scene
    L, parts = sss_laplacian(image, features, sp, return_affinities=True)
    assert parts["superpixels"] is sp
    # Eq. 6 by linearity: L = L_M + 0.01 (D_S - W_S) + 0.01 (D_C - W_C)
    expected = (
        matting_laplacian(image)
        + 0.01 * laplacian(semantic_affinity(features, sp))
        + 0.01 * laplacian(color_affinity(image, sp))
    )
    np.testing.assert_allclose(L.toarray(), expected.toarray(), atol=1e-12)
    W = matting_affinity(image) + 0.01 * parts["W_S"] + 0.01 * parts["W_C"]
    np.testing.assert_allclose(L.toarray(), laplacian(W).toarray(), atol=0)
    assert abs(L - L.T).max() == 0
    assert np.abs(L @ np.ones(L.shape[0])).max() < 1e-12


def test_sss_laplacian_is_indefinite(scene):
    image, features, sp = scene
    eigenvalues = np.linalg.eigvalsh(sss_laplacian(image, features, sp).toarray())
    assert eigenvalues[0] < -1e-6  # the negative semantic affinities at work


def test_paper_parameters(scene):
    image, features, sp = scene
    params = GraphParams.paper()
    assert params.semantic_threshold == 0.2 and params.normalized
    assert GraphParams.paper(sigma_s=0.1).sigma_s == 0.1
    L = sss_laplacian(image, features, sp, params=params)
    W = (
        matting_affinity(image)
        + 0.01 * semantic_affinity(features, sp, threshold=0.2)
        + 0.01 * color_affinity(image, sp)
    )
    np.testing.assert_allclose(L.toarray(), laplacian(W, normalized=True).toarray(), atol=1e-14)


def test_superpixels_default_to_slic(photo):
    image = photo("coffee", (30, 40))
    params = GraphParams(n_superpixels=30)
    L = sss_laplacian(image, image, params=params)
    expected = sss_laplacian(image, image, superpixels(image, 30), params=params)
    assert (L != expected).nnz == 0


def test_bad_inputs(scene):
    image, features, sp = scene
    with pytest.raises(ValueError, match="features must have shape"):
        sss_laplacian(image, features[:10], sp)
    with pytest.raises(ValueError, match="NaN"):
        sss_laplacian(image, np.full(features.shape, np.nan), sp)
    with pytest.raises(TypeError, match="GraphParams"):
        sss_laplacian(image, features, sp, params={"sigma_s": 1})
    with pytest.raises(ValueError, match="sigma_s"):
        GraphParams(sigma_s=-1)
    with pytest.raises(ValueError, match="n_superpixels"):
        GraphParams(n_superpixels=0)
    with pytest.raises(TypeError, match="normalized"):
        GraphParams(normalized="yes")
