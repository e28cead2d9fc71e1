"""Tests of unmix.linalg.cudss: the GPU sparse factorisation (cuDSS via nvmath-python).

Oracle: SciPy's SuperLU solve of the same systems, on a real photograph's matting
Laplacian (SPD after a shift) and on the indefinite SSS Laplacian shifted as the
eigensolver shifts it. All tests need a GPU with nvmath-python and cuDSS.
"""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from unmix.graph import GraphParams, matting_laplacian, sss_laplacian

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _needs_cudss():
    from unmix.linalg.cudss import cudss_available

    if not cudss_available():
        pytest.skip("nvmath-python with cuDSS is not installed")


def _systems(photo):
    image = photo("coffee", (40, 48))
    n = image.shape[0] * image.shape[1]
    spd = (matting_laplacian(image) + 1e-3 * sp.identity(n)).tocsr()
    params = GraphParams(n_superpixels=60)
    indefinite = (sss_laplacian(image, image, params=params) + 1e-6 * sp.identity(n)).tocsr()
    return {"spd": spd, "symmetric": indefinite}


@pytest.mark.parametrize("structure", ["spd", "symmetric", "general"])
@pytest.mark.parametrize("n_rhs", [1, 8])
def test_solves_match_superlu(photo, structure, n_rhs):
    import cupy

    from unmix.linalg.cudss import CuDSSFactor

    A = _systems(photo)["spd" if structure == "spd" else "symmetric"]
    factor = CuDSSFactor(A, structure, n_rhs=n_rhs)
    assert factor.kind in {"spd": ("cholesky",), "symmetric": ("ldlt", "lu"),
                           "general": ("lu",)}[structure]
    assert factor.backward_error <= 1e-10
    rng = np.random.default_rng(0)
    # Widths that are not multiples of n_rhs go in zero-padded chunks.
    for width in {1, n_rhs, n_rhs + 3}:
        B = rng.standard_normal((A.shape[0], width))
        X = factor.solve(cupy.asarray(B))
        assert isinstance(X, cupy.ndarray) and X.shape == B.shape
        ref = sla.splu(A.tocsc()).solve(B)
        rel = np.linalg.norm(X.get() - ref) / np.linalg.norm(ref)
        assert rel < 1e-6 if structure != "spd" else rel < 1e-9
        backward = np.linalg.norm(A @ X.get() - B) / (abs(A).sum(0).max() * np.linalg.norm(ref))
        assert backward < 1e-12
    x = factor.solve(cupy.asarray(B[:, 0]))
    assert x.shape == (A.shape[0],)
    factor.free()


def test_bad_arguments(photo):
    from unmix.linalg.cudss import CuDSSFactor

    A = _systems(photo)["spd"]
    with pytest.raises(ValueError, match="structure must be"):
        CuDSSFactor(A, "hermitian")
    with pytest.raises(ValueError, match="square"):
        CuDSSFactor(A[:, :-1], "general")
    factor = CuDSSFactor(A, "spd")
    with pytest.raises(ValueError, match="rows"):
        factor.solve(np.ones(A.shape[0] + 1))
