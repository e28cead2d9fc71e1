"""Tests of unmix.linalg.krylov_schur: thick-restart block Krylov–Schur.

Oracle: dense LAPACK (numpy.linalg.eigh) on symmetric matrices with a prescribed
spectrum (clustered and repeated eigenvalues of both signs). Eigenvectors of repeated or
clustered eigenvalues are compared as subspaces (principal angles), never one by one.
"""

import numpy as np
import pytest
import scipy.linalg as la

from unmix._backend import get_backend
from unmix.exceptions import ConvergenceWarning
from unmix.linalg import krylov_schur
from unmix.linalg.krylov_schur import block_krylov_schur


def _matrix(n=400, seed=0):
    """Symmetric A = Q diag(ev) Qᵀ: a triple eigenvalue, a tight cluster, a ± pair."""
    rng = np.random.default_rng(seed)
    top = [10.0, 10.0, 10.0,                     # multiplicity 3
           -9.0, 9.0,                           # equal magnitude, opposite sign
           8.0, 8.0 + 1e-7, 8.0 - 1e-7,         # tight cluster
           -7.5, 7.0, 6.5, -6.0]
    ev = np.concatenate([top, rng.uniform(-2.0, 2.0, n - len(top))])
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * ev) @ Q.T
    return (A + A.T) / 2, ev


@pytest.fixture(scope="module")
def dense():
    A, ev = _matrix()
    return A, la.eigh(A)


@pytest.mark.parametrize("b", [1, 2, 4, 8])
def test_matches_dense_with_multiplicities(dense, b):
    A, (w, U) = dense
    k = 12
    theta, X, info = block_krylov_schur(lambda Z: A @ Z, A.shape[0], k, block_size=b,
                                        ncv=48, tol=1e-12, random_state=1,
                                        return_info=True)
    assert info.converged and info.n_restarts >= 1  # the restart path is exercised
    o = np.argsort(-np.abs(w))[:k]
    np.testing.assert_allclose(np.sort(theta), np.sort(w[o]), rtol=0, atol=1e-10 * 10)
    np.testing.assert_allclose(X.T @ X, np.eye(k), atol=1e-12)
    assert np.linalg.norm(A @ X - X * theta, axis=0).max() < 1e-9
    # The wanted set is separated from the rest (|λ| = 6 vs ≤ 2): same subspace.
    assert np.sin(la.subspace_angles(X, U[:, o])).max() < 1e-9
    # The triple eigenvalue 10 is found with its whole 3-D eigenspace.
    t = np.flatnonzero(np.abs(theta - 10.0) < 1e-8)
    assert t.size == 3
    E = U[:, np.abs(w - 10.0) < 1e-8]
    assert np.sin(la.subspace_angles(X[:, t], E)).max() < 1e-8


def test_column_parts_match_one_part(dense, monkeypatch):
    """The basis products over two concurrent column parts give the one-part answer."""
    A, (w, U) = dense
    run = dict(block_size=4, ncv=40, tol=1e-12, random_state=2, return_info=True)
    t1, X1, info1 = block_krylov_schur(lambda Z: A @ Z, A.shape[0], 10, **run)
    # Panels of 8 entries: n = 400 splits into two parts.
    monkeypatch.setattr(krylov_schur, "_PANEL_COLUMNS", 8)
    assert len(krylov_schur._column_parts(A.shape[0], get_backend("cpu"))) == 2
    t2, X2, info2 = block_krylov_schur(lambda Z: A @ Z, A.shape[0], 10, **run)
    assert info1.converged and info2.converged and info2.n_restarts >= 1
    np.testing.assert_allclose(t2, t1, rtol=0, atol=1e-11)
    np.testing.assert_allclose(X2.T @ X2, np.eye(10), atol=1e-12)
    assert np.linalg.norm(A @ X2 - X2 * t2, axis=0).max() < 1e-9


def test_deterministic_and_key(dense):
    A, (w, _) = dense
    run = dict(block_size=4, ncv=40, tol=1e-10, random_state=3)
    t1, X1 = block_krylov_schur(lambda Z: A @ Z, A.shape[0], 5, **run)
    t2, X2 = block_krylov_schur(lambda Z: A @ Z, A.shape[0], 5, **run)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(X1, X2)
    # A custom wanted set: the algebraically largest.
    t3, _ = block_krylov_schur(lambda Z: A @ Z, A.shape[0], 5, key=lambda th: -th, **run)
    np.testing.assert_allclose(t3, np.sort(w)[::-1][:5], atol=1e-8)


def test_invariant_subspace_breakdown():
    # A has only 3 distinct eigenvalues: the Krylov space is exhausted after one block.
    rng = np.random.default_rng(0)
    n = 60
    ev = np.repeat([3.0, -2.0, 1.0], 20)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * ev) @ Q.T
    theta, X = block_krylov_schur(lambda Z: A @ Z, n, 4, block_size=2, ncv=20, tol=1e-10)
    assert np.all(np.isfinite(X))
    np.testing.assert_allclose(X.T @ X, np.eye(4), atol=1e-10)
    assert np.linalg.norm(A @ X - X * theta, axis=0).max() < 1e-8


def test_non_convergence_warns_and_returns_best(dense):
    A, _ = dense
    with pytest.warns(ConvergenceWarning, match="converged"):
        theta, X, info = block_krylov_schur(lambda Z: A @ Z, A.shape[0], 12, block_size=2,
                                            ncv=20, maxiter=1, tol=1e-14,
                                            return_info=True)
    assert not info.converged
    assert theta.shape == (12,) and X.shape == (A.shape[0], 12)
    assert np.all(np.isfinite(theta)) and np.all(np.isfinite(X))


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(apply="A"), TypeError, "apply must be callable"),
        (dict(k=0), ValueError, "k must satisfy"),
        (dict(k=2.0), TypeError, "k must be an integer"),
        (dict(block_size=0), ValueError, "block_size"),
        (dict(ncv=4), ValueError, "ncv must be"),
        (dict(keep=100), ValueError, "keep must"),
        (dict(tol=0.0), ValueError, "tol must be"),
        (dict(maxiter=0), ValueError, "maxiter"),
        (dict(apply=lambda Z: Z[:3]), ValueError, "apply returned"),
        (dict(apply=lambda Z: Z * np.nan), ValueError, "non-finite"),
    ],
)
def test_bad_inputs(kwargs, exc, match):
    args = dict(apply=lambda Z: Z * 2.0, n=50, k=3, block_size=2, ncv=20)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        block_krylov_schur(**args)
