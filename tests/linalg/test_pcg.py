import warnings

import numpy as np
import pytest
import scipy.sparse as sparse
from scipy.sparse.linalg import spsolve

from unmix import ConvergenceWarning
from unmix.graph import matting_laplacian
from unmix.linalg import pcg


@pytest.fixture
def system(photo):
    """An SPD system from a real image: the matting Laplacian plus a diagonal."""
    image = photo("coffee", (20, 24))
    A = (matting_laplacian(image) + sparse.diags(np.linspace(0.1, 2.0, 480))).tocsr()
    b = np.random.default_rng(0).normal(size=480)
    return A, b


def textbook_cg(A, b, iterations):
    """Plain CG; returns every iterate."""
    x = np.zeros_like(b)
    r = b.copy()
    p = r.copy()
    iterates = []
    for _ in range(iterations):
        q = A @ p
        step = (r @ r) / (p @ q)
        x = x + step * p
        r_new = r - step * q
        p = r_new + (r_new @ r_new) / (r @ r) * p
        r = r_new
        iterates.append(x)
    return iterates


def test_converges_to_the_direct_solution(system):
    A, b = system
    result = pcg(A, b, rtol=1e-10, maxiter=2000)
    assert result.converged and result.residual <= 1e-10
    np.testing.assert_allclose(result.x, spsolve(A.tocsc(), b), rtol=1e-7, atol=1e-9)


def test_returns_the_iterate_of_smallest_residual():
    # CG residuals of an ill-conditioned system are not monotone
    A = sparse.diags(np.geomspace(1.0, 1e4, 100)).tocsr()
    b = np.random.default_rng(0).normal(size=100)
    # the initial guess (zero) is a candidate too, as in MATLAB's pcg
    iterates = [np.zeros_like(b)] + textbook_cg(A, b, 200)
    residuals = [np.linalg.norm(b - A @ x) / np.linalg.norm(b) for x in iterates]
    # stop right after a step that raises the residual
    stop = next(
        i for i in range(1, 200)
        if residuals[i] > residuals[i - 1] and 0 < np.argmin(residuals[: i + 1]) < i
    )
    iterates, residuals = iterates[: stop + 1], residuals[: stop + 1]
    assert 0 < np.argmin(residuals) < stop
    with pytest.warns(ConvergenceWarning, match="smallest residual"):
        result = pcg(A, b, rtol=1e-12, maxiter=stop)
    assert not result.converged and result.iterations == stop
    np.testing.assert_allclose(result.x, iterates[int(np.argmin(residuals))], rtol=1e-8, atol=1e-12)
    assert result.residual == pytest.approx(min(residuals), rel=1e-6)


def test_warm_start_and_zero_rhs(system):
    A, b = system
    exact = spsolve(A.tocsc(), b)
    result = pcg(A, b, x0=exact, rtol=1e-6)
    assert result.iterations == 0 and result.converged
    zero = pcg(A, np.zeros_like(b))
    assert zero.converged and not zero.x.any()


def test_jacobi_preconditioner_helps_a_badly_scaled_system(system):
    A, b = system
    scale = sparse.diags(np.geomspace(1, 1e3, A.shape[0]))
    A = (scale @ A @ scale).tocsr()
    inverse_diagonal = 1.0 / A.diagonal()
    plain = pcg(A, b, rtol=1e-8, maxiter=5000, warn=False)
    jacobi = pcg(A, b, rtol=1e-8, maxiter=5000, M=lambda r: inverse_diagonal * r, warn=False)
    assert jacobi.converged and jacobi.iterations < plain.iterations


def test_accepts_a_function_and_stays_quiet_when_asked(system):
    A, b = system
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = pcg(lambda v: A @ v, b, maxiter=3, warn=False)
    assert not result.converged and np.isfinite(result.x).all()


def test_indefinite_matrix_stops_without_nan():
    A = sparse.diags([1.0, -1.0, 2.0]).tocsr()
    with pytest.warns(ConvergenceWarning):
        result = pcg(A, np.ones(3), maxiter=10)
    assert np.isfinite(result.x).all() and not result.converged


def test_bad_parameters(system):
    A, b = system
    with pytest.raises(ValueError, match="rtol"):
        pcg(A, b, rtol=0)
    with pytest.raises(ValueError, match="maxiter"):
        pcg(A, b, maxiter=-1)
