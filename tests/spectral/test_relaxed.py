import sys

import numpy as np
import pytest

from unmix._backend import GPUUnavailableError, get_backend, gpu_available, to_host
from unmix.graph import sss_laplacian, superpixels
from unmix.linalg import pcg
from unmix.spectral.relaxed import (
    _apply_relaxed,
    _ArrayKernels,
    _NumbaKernels,
    _RelaxedSystem,
    _threshold_target,
    relaxed_energy,
    relaxed_sparsification,
    sparsity_exponent,
)


def _problem(shape, n_superpixels, n_layers, seed):
    """coffee at ``shape`` with its Laplacian and smooth random soft segments."""
    from unmix.image import example_image

    image = example_image("coffee", shape)
    L = sss_laplacian(image, image, superpixels(image, n_segments=n_superpixels))
    rng = np.random.default_rng(seed)
    logits = 3 * rng.normal(size=(*shape, n_layers)).cumsum(axis=0) / 4
    alphas = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    return image, L, alphas


@pytest.fixture(scope="module")
def problem():
    return _problem((12, 16), 12, 4, seed=0)


@pytest.fixture(scope="module")
def photo_problem():
    """A 36×48 photograph with its Laplacian and five smooth random soft segments."""
    return _problem((36, 48), 24, 5, seed=2)


def dense_system(L, d, lam):
    """The K·N matrix of Eq. 17, layer-major: blkdiag(L) + δ (1 1ᵀ ⊗ I) + diag(d)."""
    N, K = d.shape
    A = np.kron(np.eye(K), L.toarray()) + lam * np.kron(np.ones((K, K)), np.eye(N))
    return A + np.diag(d.T.ravel())


def dense_relaxed(alphas, L, gamma, iterations, lam=100.0):
    """The released algorithm with exact dense solves, layer-major unknowns."""
    N, K = alphas.shape[0] * alphas.shape[1], alphas.shape[2]
    target = alphas.reshape(N, K).copy()
    target[target < 0.1] = 0
    target[target > 0.9] = 1
    target /= target.sum(axis=1, keepdims=True)
    g = np.repeat(gamma.reshape(N, 1), K, axis=1)
    x = target.copy()
    for _ in range(iterations):
        u = np.maximum(np.abs(x), 0.01) ** (g - 2)
        v = np.maximum(np.abs(1 - x), 0.01) ** (g - 2)
        A = dense_system(L, u + v + 1.0, lam)
        b = (v + target + lam).T.ravel()
        x = np.linalg.solve(A, b).reshape(K, N).T
    A = dense_system(L, np.ones((N, K)), lam)
    x = np.linalg.solve(A, (x + lam).T.ravel()).reshape(K, N).T
    return x.reshape(alphas.shape)


def pixel_major_system(L, d, lam):
    """The K·N matrix of Eq. 17 for pixel-major unknowns X.ravel() (X is N×K)."""
    N, K = d.shape
    return (np.kron(L.toarray(), np.eye(K)) + lam * np.kron(np.eye(N), np.ones((K, K)))
            + np.diag(d.ravel()))


@pytest.mark.parametrize("K", [2, 4, 7])
def test_product_matches_the_dense_matrix(problem, K):
    _, L, _ = problem
    N = L.shape[0]
    rng = np.random.default_rng(K)
    d, X = rng.uniform(1, 50, size=(N, K)), rng.normal(size=(N, K))
    out = np.empty((N, K))
    curvature = _apply_relaxed(L.indptr, L.indices, L.data, X, d, 100.0, (0.0,) * K, out)
    expected = (dense_system(L, d, 100.0) @ X.T.ravel()).reshape(K, N).T
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-10)
    assert curvature == pytest.approx(np.sum(X * expected), rel=1e-12)


def test_irls_step_sets_eq_17_its_preconditioner_and_initial_residual(problem):
    image, L, alphas = problem
    N, K = L.shape[0], alphas.shape[2]
    gamma = sparsity_exponent(image).ravel()
    target = _threshold_target(alphas.reshape(N, K))
    rng = np.random.default_rng(1)
    x = target + rng.normal(scale=0.05, size=(N, K))  # entries on both sides of the floor
    system = _RelaxedSystem(L, gamma, 0.01, 100.0, x, preconditioned=True)
    result = system.solve(target, 2.0, 0.5, rtol=1e-6, maxiter=0)  # the set-up alone
    g = gamma[:, None] - 2
    u, v = np.maximum(np.abs(x), 0.01) ** g, np.maximum(np.abs(1 - x), 0.01) ** g
    np.testing.assert_allclose(system.d, 2.0 * (u + v) + 0.5, rtol=1e-14)
    np.testing.assert_allclose(system.rhs, 2.0 * v + 0.5 * target + 100.0, rtol=1e-14)
    A = pixel_major_system(L, system.d, 100.0)
    # r = b − A x, with A x carried through the change of d
    residual = system.rhs.ravel() - A @ x.ravel()
    np.testing.assert_allclose(system.r.ravel(), residual, rtol=1e-12, atol=1e-10)
    assert result.residual == pytest.approx(np.linalg.norm(residual) / np.linalg.norm(system.rhs))
    # z = B⁻¹ r with B_p each pixel's K×K diagonal block of A
    blocks = np.stack([A[p * K:(p + 1) * K, p * K:(p + 1) * K] for p in range(N)])
    np.testing.assert_allclose(system.z, np.linalg.solve(blocks, system.r[..., None])[..., 0],
                               rtol=1e-12, atol=1e-14)


# Unpreconditioned CG on a stiff system (σ_S = 100, δ = 10⁴) has residuals
# that stay above their minimum for three iterations in a row, which
# exercises the bookkeeping of the iterate of smallest residual.
@pytest.mark.parametrize("preconditioned, sigma_s, lam", [(True, 1.0, 100.0), (False, 100.0, 1e4)])
def test_fused_solver_matches_generic_pcg(problem, preconditioned, sigma_s, lam):
    image, L, alphas = problem
    N, K = L.shape[0], alphas.shape[2]
    gamma = sparsity_exponent(image).ravel()
    target = _threshold_target(alphas.reshape(N, K))
    first_solutions = []
    for maxiter in range(1, 25):
        system = _RelaxedSystem(L, gamma, 0.01, lam, target, preconditioned)
        x = target.ravel()
        for solve in range(2):  # the second solve starts warm, from the first one's result
            result = system.solve(target, sigma_s, 1.0, rtol=1e-10, maxiter=maxiter)
            A = pixel_major_system(L, system.d, lam)
            blocks = np.linalg.inv([A[p * K:(p + 1) * K, p * K:(p + 1) * K] for p in range(N)])

            def block_jacobi(r, blocks=blocks):
                return np.einsum("pij,pj->pi", blocks, r.reshape(N, K)).ravel()

            expected = pcg(A, system.rhs.ravel(), x, rtol=1e-10, maxiter=maxiter,
                           M=block_jacobi if preconditioned else None, warn=False)
            assert (result.iterations, result.converged) == (expected.iterations,
                                                             expected.converged)
            np.testing.assert_allclose(result.x.ravel(), expected.x, rtol=1e-10, atol=1e-12)
            assert result.residual == pytest.approx(expected.residual, rel=1e-6)
            x = expected.x
            if solve == 0 and not expected.converged:
                first_solutions.append(x)
    if not preconditioned:
        # Three more iterations gave the same result: the one of smallest
        # residual was three iterations before the last.
        assert any(np.array_equal(a, b) for a, b in zip(first_solutions, first_solutions[3:]))


def test_threshold_target():
    alphas = np.array([[0.05, 0.95, 0.0], [0.5, 0.3, 0.2], [0.92, 0.04, 0.04]])
    np.testing.assert_allclose(_threshold_target(alphas),
                               [[0, 1, 0], [0.5, 0.3, 0.2], [1, 0, 0]])


def test_matches_dense_solves(problem):
    image, L, alphas = problem
    gamma = sparsity_exponent(image)
    expected = dense_relaxed(alphas, L, gamma, iterations=3)
    for preconditioner in ("block-jacobi", None):
        out = relaxed_sparsification(alphas, L, image, iterations=3, rtol=1e-13, maxiter=5000,
                                     final_maxiter=5000, preconditioner=preconditioner)
        np.testing.assert_allclose(out, expected, atol=1e-8)


def test_energy_decreases_and_layers_sum_to_one(problem):
    image, L, alphas = problem
    out, info = relaxed_sparsification(alphas, L, image, rtol=1e-12, maxiter=2000, return_info=True)
    energy = np.array(info["energy"])
    assert np.all(np.diff(energy) <= 1e-9 * energy[0])  # majorise-minimise: never increases
    assert energy[-1] < energy[0]
    assert np.abs(out.sum(axis=2) - 1).max() < 1e-3
    assert out.min() > -0.3 and out.max() < 1.3


def test_released_solver_settings_are_close_to_converged(problem):
    image, L, alphas = problem
    faithful = relaxed_sparsification(alphas, L, image, preconditioner=None)
    converged = relaxed_sparsification(alphas, L, image, rtol=1e-12, maxiter=5000)
    assert np.abs(faithful - converged).max() < 1e-3


def test_energy_of_a_known_state(problem):
    _, L, alphas = problem
    N, K = L.shape[0], alphas.shape[2]
    X = alphas.reshape(N, K)
    gamma = np.full(N, 0.95)
    # with every |α| and |1 - α| above the floor, the penalty is (2/γ)(|α|^γ + |1-α|^γ)
    X = np.clip(X, 0.02, 0.98)
    expected = (np.sum(X * (L @ X)) + np.sum((2 / 0.95) * (X**0.95 + (1 - X) ** 0.95))
                + np.sum((X - alphas.reshape(N, K)) ** 2) + 100 * np.sum((1 - X.sum(1)) ** 2))
    assert relaxed_energy(X, L, gamma, alphas) == pytest.approx(expected, rel=1e-12)


def test_bad_inputs(problem):
    image, L, alphas = problem
    with pytest.raises(ValueError, match="shape"):
        relaxed_sparsification(alphas[..., 0], L, image)
    with pytest.raises(ValueError, match="sparse"):
        relaxed_sparsification(alphas, L[:10, :10], image)
    with pytest.raises(ValueError, match="NaN"):
        relaxed_sparsification(np.full_like(alphas, np.nan), L, image)
    with pytest.raises(TypeError, match="alphas must be a real array, got dtype <U"):
        relaxed_sparsification(alphas.astype(str), L, image)
    with pytest.raises(ValueError, match="lam"):
        relaxed_sparsification(alphas, L, image, lam=-1)
    with pytest.raises(ValueError, match="preconditioner"):
        relaxed_sparsification(alphas, L, image, preconditioner="ilu")
    with pytest.raises(ValueError, match="image has shape"):
        relaxed_sparsification(alphas, L, image[:5])


# The array kernels (the GPU's; on NumPy without one) against the Numba kernels.

def assert_same(actual, expected):
    """Equal to 1e-12 relative to the largest entry (single entries may cancel to about 0)."""
    np.testing.assert_allclose(to_host(actual), expected, rtol=1e-12,
                               atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("device", ["cpu", pytest.param("gpu", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("preconditioned", [True, False])
def test_array_kernels_match_numba_kernels(photo_problem, preconditioned, device):
    image, L, alphas = photo_problem
    N, K = L.shape[0], alphas.shape[2]
    gamma = sparsity_exponent(image).ravel()
    backend = get_backend(device)
    numba_set = _NumbaKernels(L, gamma, 0.01, 100.0, K, preconditioned)
    array_set = _ArrayKernels(backend.csr(L), backend.asarray(gamma), 0.01, 100.0, K,
                              preconditioned)
    assert array_set.xp is backend.xp

    def compare(operation, *arrays):
        """operation(kernels, *arrays) on both sets, each on copies on its device and in its
        memory order: the values returned and every array (inputs, outputs, buffers) agree."""
        copies, returned = {}, {}
        for kernels in (numba_set, array_set):
            copies[kernels] = [kernels.xp.array(a, order=kernels.order) for a in arrays]
            returned[kernels] = operation(kernels, *copies[kernels])
        if returned[numba_set] is not None:
            assert returned[array_set] == pytest.approx(returned[numba_set], rel=1e-12)
        for actual, expected in zip(copies[array_set], copies[numba_set]):
            assert_same(actual, expected)

    rng = np.random.default_rng(3)
    zeros = np.zeros((N, K))

    def draw(low=None, high=None):
        return rng.normal(size=(N, K)) if low is None else rng.uniform(low, high, size=(N, K))

    compare(lambda k, X, d, out: k.product(X, d, out), draw(), draw(1, 50), zeros)
    # The IRLS set-up at x with entries on both sides of the floor and of 1 − floor,
    # then with σ_S = 0 as in the final solve; without a preconditioner z is r.
    target = _threshold_target(alphas.reshape(N, K))
    x = target + rng.normal(scale=0.05, size=(N, K))
    x[:10] = [0.0, 1.0, 0.005, 0.995, -0.003]
    for sigma_s, sigma_f in [(2.0, 0.5), (0.0, 1.0)]:
        compare(lambda k, x, target, d, rhs, Ax, r, z: k.irls_system(
                    x, target, sigma_s, sigma_f, d, rhs, Ax, r, z if preconditioned else r),
                x, target, draw(1, 5), zeros, draw(), zeros, zeros)
        assert_same(array_set.inverse_D, numba_set.inverse_D)
        assert_same(array_set.coupling[:, 0], numba_set.coupling)
    # A CG step with the preconditioner of the last set-up, a direction, a distance.
    compare(lambda k, x, p, r, q, x_next, z: k.cg_update(
                0.3, x, p, r, q, x_next, z if preconditioned else r),
            x, draw(), draw(), draw(), zeros, zeros)
    compare(lambda k, z, p: k.cg_direction(z, 0.7, p), draw(), draw())
    compare(lambda k, a, b: k.squared_distance(a, b), x, draw())


@pytest.mark.parametrize("preconditioner", ["block-jacobi", None])
def test_array_kernels_give_the_numba_result(photo_problem, preconditioner):
    image, L, alphas = photo_problem
    expected, expected_info = relaxed_sparsification(alphas, L, image, preconditioner=preconditioner,
                                                     return_info=True)
    out, info = relaxed_sparsification(alphas, L, image, preconditioner=preconditioner,
                                       return_info=True, _kernels="array")
    assert type(out) is np.ndarray and out.shape == alphas.shape
    assert np.abs(out - expected).max() < 1e-10
    assert info["pcg_iterations"] == expected_info["pcg_iterations"]
    np.testing.assert_allclose(info["energy"], expected_info["energy"], rtol=1e-12)
    np.testing.assert_allclose(info["pcg_residuals"], expected_info["pcg_residuals"], rtol=1e-6)


def test_device_argument(problem):
    image, L, alphas = problem
    with pytest.raises(ValueError, match="device"):
        relaxed_sparsification(alphas, L, image, device="tpu")
    np.testing.assert_array_equal(relaxed_sparsification(alphas, L, image, device="cpu"),
                                  relaxed_sparsification(alphas, L, image))


@pytest.mark.skipif(gpu_available(), reason="CuPy and a CUDA device are present")
def test_gpu_without_cupy_raises(problem, monkeypatch):
    image, L, alphas = problem
    for module in ("cupy", "cupyx", "cupyx.scipy", "cupyx.scipy.sparse"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(GPUUnavailableError, match="CuPy"):
        relaxed_sparsification(alphas, L, image, device="gpu")


# On a CUDA device (skipped without one, see tests/conftest.py).

@pytest.mark.gpu
def test_gpu_matches_cpu_numpy_in_numpy_out(photo_problem):
    image, L, alphas = photo_problem
    expected, expected_info = relaxed_sparsification(alphas, L, image, return_info=True)
    out, info = relaxed_sparsification(alphas, L, image, device="gpu", return_info=True)
    assert type(out) is np.ndarray and out.shape == alphas.shape
    assert np.abs(out - expected).max() < 1e-5
    assert np.abs(out.sum(axis=2) - 1).max() < 1e-3
    assert len(info["pcg_iterations"]) == len(expected_info["pcg_iterations"])
    assert max(abs(a - b) for a, b in zip(info["pcg_iterations"],
                                          expected_info["pcg_iterations"])) <= 1
    np.testing.assert_allclose(info["energy"], expected_info["energy"], rtol=1e-6)
    assert all(isinstance(e, float) for e in info["energy"] + info["pcg_residuals"])


@pytest.mark.gpu
def test_gpu_cupy_in_cupy_out(photo_problem):
    import cupy
    import cupyx.scipy.sparse

    image, L, alphas = photo_problem
    expected = relaxed_sparsification(alphas, L, image)
    L_gpu = cupyx.scipy.sparse.csr_matrix(L)
    out = relaxed_sparsification(cupy.asarray(alphas), L_gpu, image)  # device=None: where they are
    assert isinstance(out, cupy.ndarray) and out.shape == alphas.shape
    assert np.abs(out.get() - expected).max() < 1e-5
    assert float(cupy.abs(out.sum(axis=2) - 1).max()) < 1e-3
    # γ given on the device, no image; a SciPy L is moved there.
    gamma = cupy.asarray(sparsity_exponent(image))
    out = relaxed_sparsification(alphas, L, None, gamma=gamma)
    assert isinstance(out, cupy.ndarray)
    assert np.abs(out.get() - expected).max() < 1e-5


@pytest.mark.gpu
def test_gpu_bad_inputs(problem):
    import cupy

    image, L, alphas = problem
    with pytest.raises(ValueError, match="shape"):
        relaxed_sparsification(cupy.asarray(alphas[..., 0]), L, image)
    with pytest.raises(ValueError, match="NaN"):
        relaxed_sparsification(cupy.full(alphas.shape, np.nan), L, image)
    with pytest.raises(ValueError, match="sparse"):
        relaxed_sparsification(cupy.asarray(alphas), cupy.asarray(L.toarray()), image)
    with pytest.raises(ValueError, match="image has shape"):
        relaxed_sparsification(cupy.asarray(alphas), L, image[:5])
    with pytest.raises(ValueError, match="gamma"):
        relaxed_sparsification(alphas, L, None, gamma=cupy.full((3, 3), 1.0), device="gpu")
