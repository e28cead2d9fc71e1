"""Tests of unmix.spectral.constrained (spec sss.md §10, §14 items 6–7, §19).

Oracle: an independent, obviously-correct dense implementation of one IRLS iteration
written here (the full (C−1)K block system built with np.kron and block_diag, solved by
LAPACK), run from the same state.  A whole 40-iteration run is never compared value by
value (rounding noise grows ~10× per iteration, §19); for whole runs we test what the
method guarantees: exact sum-to-one, the pruning schedule, and a non-increasing energy.

The GPU's pixel passes (the array code of ``_ArrayPixelWork``) are checked against the
Numba ones pass by pass to rounding, and over whole runs short enough (12 iterations,
three prunes) that rounding differences stay below 1e-6: two implementations that
differ by an ulp per operation drift apart by ~1e-4 in the energy by iteration 25 of the
40-iteration schedule on these problems, as the n_threads note of the stage says.
"""

import importlib
import warnings

import numpy as np
import pytest
import scipy.linalg as la

from unmix._backend import to_host
from unmix.exceptions import ConvergenceWarning
from unmix.graph import GraphParams, sss_laplacian, superpixels
from unmix.image import example_image
from unmix.spectral import smallest_eigenpairs
from unmix.spectral import constrained as cs
from unmix.spectral._kmeans import seeded_kmeans
from unmix.spectral.constrained import constrained_sparsification, kmeans_init, prune_schedule

SHAPE = (24, 32)
K = 25
C0 = 8
GAMMA = 0.8


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def problem():
    """Tiny real problem: coffee 24×32, 60 superpixels, features = the image itself."""
    img = example_image("coffee", SHAPE)
    spx = superpixels(img, n_segments=60)
    L = sss_laplacian(img, img, sp=spx).tocsr()
    vals, vecs = smallest_eigenpairs(L, K, method="dense")
    labels = kmeans_init(img, C0, random_state=0)
    return {"img": img, "sp": spx, "L": L, "vals": vals, "vecs": vecs, "labels": labels}


@pytest.fixture(scope="module")
def normalized_problem(problem):
    img = problem["img"]
    L = sss_laplacian(img, img, sp=problem["sp"], params=GraphParams(normalized=True)).tocsr()
    vals, vecs = smallest_eigenpairs(L, K, method="dense")
    return {"L": L, "vals": vals, "vecs": vecs, "labels": problem["labels"]}


# --------------------------------------------------------------------------- oracle
def _one_hot(labels, C):
    a = np.zeros((labels.size, C))
    a[np.arange(labels.size), labels] = 1.0
    return a


def _dense_iteration(E, lam, alpha, gamma=GAMMA, l1=None):
    """One IRLS iteration of spec §10.3, written out with the full dense system."""
    c = 0.3**gamma
    e0 = c * np.maximum(np.abs(alpha), 1e-10) ** (gamma - 2)
    e1 = c * np.maximum(np.abs(alpha - 1), 1e-10) ** (gamma - 2)
    N, C = alpha.shape
    m = C - 1
    A = [E.T @ np.diag(e0[:, k] + e1[:, k]) @ E + np.diag(lam) for k in range(C)]
    b = [E.T @ e1[:, k] for k in range(m)]
    bC = E.T @ e0[:, m] + (0.0 if l1 is None else E.T @ l1)
    big = la.block_diag(*A[:m]) + np.kron(np.ones((m, m)), A[m])
    y = np.linalg.solve(big, np.concatenate([bk + bC for bk in b])).reshape(m, -1)
    out = np.empty_like(alpha)
    out[:, :m] = E @ y.T
    out[:, m] = 1.0 - out[:, :m].sum(axis=1)
    return out


def _energy(L, alpha, gamma=GAMMA):
    """E_c of spec §10.1, evaluated directly with the Laplacian."""
    c = 0.3**gamma
    lap = sum(float(a @ (L @ a)) for a in alpha.T)
    return lap + 2 * c / gamma * float(np.sum(np.abs(alpha) ** gamma + np.abs(1 - alpha) ** gamma))


def _run(problem, init, **kw):
    kw.setdefault("n_components", C0)
    return constrained_sparsification(problem["vecs"], problem["vals"], init, SHAPE, **kw)


def _flat(a):
    return a.reshape(-1, a.shape[-1])


# --------------------------------------------------------------------------- one iteration
def test_first_iteration_matches_dense_oracle(problem):
    got = _run(problem, problem["labels"], iterations=1)
    want = _dense_iteration(problem["vecs"], problem["vals"], _one_hot(problem["labels"], C0))
    assert got.shape == SHAPE + (C0,)
    np.testing.assert_allclose(_flat(got), want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("t", [2, 6, 15])
def test_iteration_from_same_state_matches_dense_oracle(problem, t):
    # The state after t iterations (no pruning), then one more iteration by both.
    state = _run(problem, problem["labels"], iterations=t, prune_threshold=0.0)
    got = _run(problem, state, iterations=1)
    want = _dense_iteration(problem["vecs"], problem["vals"], _flat(state))
    # Early iterations agree to ~1e-11.  The systems' condition grows with the iterations
    # (to ~1e11 by iteration 15 here), and late ones are so badly conditioned that two
    # dense LAPACK solvers (gesv, sysv) differ by ~5e-7 themselves (§19); at
    # iteration 6 the gap depends on the LAPACK build (3.7e-9 with NumPy 2.4's OpenBLAS).
    atol = {2: 1e-10, 6: 1e-8, 15: 5e-6}[t]
    np.testing.assert_allclose(_flat(got), want, rtol=0, atol=atol)


def test_iteration_after_pruning_uses_last_kept_as_dependent(problem):
    # iterations=2 with a long cycle prunes once, after iteration 2 (r = ceil(2/4) = 1);
    # a threshold between the components' max |α| makes that prune remove some of them.
    kept_all = _run(problem, problem["labels"], iterations=2, prune_threshold=0.0)
    max_abs = np.sort(np.abs(_flat(kept_all)).max(axis=0))
    threshold = 0.5 * (max_abs[C0 // 2 - 1] + max_abs[C0 // 2])
    pruned = _run(problem, problem["labels"], iterations=2, prune_every=100,
                  prune_threshold=threshold)
    assert pruned.shape[2] == C0 // 2
    three = _run(problem, problem["labels"], iterations=3, prune_every=100,
                 prune_threshold=threshold)
    want = _dense_iteration(problem["vecs"], problem["vals"], _flat(pruned))
    np.testing.assert_allclose(_flat(three), want, rtol=0, atol=1e-10)


def test_normalized_laplacian_uses_laplacian_ones(normalized_problem):
    p = normalized_problem
    l1 = p["L"] @ np.ones(p["L"].shape[0])
    assert np.abs(l1).max() > 1e-3  # L·1 ≠ 0 for the normalised Laplacian
    a1 = _run(p, p["labels"], iterations=1, prune_threshold=0.0, laplacian_ones=p["L"])
    state = _run(p, p["labels"], iterations=4, prune_threshold=0.0, laplacian_ones=l1)
    got = _run(p, state, iterations=1, laplacian_ones=l1)
    np.testing.assert_allclose(
        _flat(a1), _dense_iteration(p["vecs"], p["vals"], _one_hot(p["labels"], C0), l1=l1),
        rtol=0, atol=1e-10,
    )
    np.testing.assert_allclose(
        _flat(got), _dense_iteration(p["vecs"], p["vals"], _flat(state), l1=l1), rtol=0, atol=1e-10
    )
    # Without L·1 the result is a different (wrong) one for this Laplacian.
    wrong = _run(p, state, iterations=1)
    assert np.abs(wrong - got).max() > 1e-6


# --------------------------------------------------------------------------- block solve
def _block_system(problem, alpha, seed=0):
    E, lam = problem["vecs"], problem["vals"]
    c = 0.3**GAMMA
    w = c * (np.maximum(np.abs(alpha), 1e-10) ** (GAMMA - 2)
             + np.maximum(np.abs(alpha - 1), 1e-10) ** (GAMMA - 2))
    A = np.stack([E.T @ (w[:, [k]] * E) + np.diag(lam) for k in range(alpha.shape[1])])
    r = np.random.default_rng(seed).standard_normal((alpha.shape[1] - 1, E.shape[1]))
    r *= np.abs(A).max()
    return A, r


def _dense_block_solve(A, r):
    m = r.shape[0]
    big = la.block_diag(*A[:m]) + np.kron(np.ones((m, m)), A[m])
    return np.linalg.solve(big, r.ravel()).reshape(r.shape), big


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def _normwise_berr(big, y, r):
    res = big @ y.ravel() - r.ravel()
    return np.linalg.norm(res) / (np.linalg.norm(big, 2) * np.linalg.norm(y) + np.linalg.norm(r))


def test_compact_columns_in_place_equals_fancy_indexing():
    rng = np.random.default_rng(0)
    for keep in ([0, 2, 3], [4], [1, 2, 3, 4], [0, 1, 2, 3, 4]):
        a = rng.standard_normal((7, 5))
        expected = a[:, keep].copy()
        out = cs._compact_columns(a, keep)
        np.testing.assert_array_equal(out, expected)
        assert out.flags.c_contiguous and np.shares_memory(out, a)


def test_spd_inverse_against_numpy_with_lu_fallback():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 6))
    for A in (X.T @ X + np.eye(6), np.diag([2.0, -1.0, 3.0])):  # SPD, then indefinite
        inv = cs._spd_inverse(A)
        np.testing.assert_allclose(inv, np.linalg.inv(A), rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(inv, inv.T)


@pytest.mark.parametrize("t", [0, 8])
def test_schur_solve_equals_dense_solve_on_real_systems(problem, t):
    alpha = (_one_hot(problem["labels"], C0) if t == 0 else
             _flat(_run(problem, problem["labels"], iterations=t, prune_threshold=0.0)))
    A, r = _block_system(problem, alpha)
    y, steps, berr = cs._solve_block_system(A, r)
    y_dense, big = _dense_block_solve(A, r)
    assert berr < 1e-15
    # The forward error is cond-limited (cond ~1e10 by iteration 8): as close to LU as a
    # second dense LAPACK solver is, and to 1e-8 where that one is closer still.
    y_sym = la.solve(big, r.ravel(), assume_a="sym").reshape(r.shape)
    assert _rel(y, y_dense) <= max(1e-8, 3 * _rel(y_sym, y_dense))


@pytest.mark.parametrize("t", [25, 39])
def test_schur_solve_with_refinement_on_badly_conditioned_systems(problem, t):
    # Late iterations: cond ~1e11, the plain Schur solve loses digits (§10.5).
    alpha = _flat(_run(problem, problem["labels"], iterations=t, prune_threshold=0.0))
    A, r = _block_system(problem, alpha)
    y_dense, big = _dense_block_solve(A, r)
    assert np.linalg.cond(big) > 1e10
    y0, _, berr0 = cs._solve_block_system(A, r, max_refine=0)
    y, steps, berr = cs._solve_block_system(A, r)
    # Refinement runs where the plain solve misses the backward-error floor, and gets
    # below it (whether it misses depends on the LAPACK build's rounding).
    assert berr <= berr0 and berr < 2.3e-16
    assert steps >= 1 or berr0 < 2.3e-16
    # As backward stable as LAPACK's dense LU, and as close to it as a second dense
    # LAPACK solver (symmetric-indefinite sysv) is: the forward error is cond-limited.
    assert _normwise_berr(big, y, r) <= 3 * _normwise_berr(big, y_dense, r) + 1e-18
    y_sym = la.solve(big, r.ravel(), assume_a="sym").reshape(r.shape)
    assert _rel(y, y_dense) <= max(1e-8, 3 * _rel(y_sym, y_dense))


# --------------------------------------------------------------------------- pruning
def test_prune_schedule():
    assert prune_schedule(40) == [11, 21, 31]  # §14 item 6: 1-based, test it > remove_at
    assert prune_schedule(8) == [3, 5, 7]
    assert prune_schedule(40, prune_every=10) == [11, 21, 31]
    assert prune_schedule(20, prune_every=10) == [6, 16]
    assert prune_schedule(3) == [2, 3]
    assert prune_schedule(1) == []


def test_pruning_happens_exactly_on_schedule(problem):
    # Labels that leave components 1 and 4 empty (all-zero layers, which the 3.8e11
    # weights pin at zero): they must disappear after iteration 3 (iterations=8: 3, 5, 7).
    labels = np.array([0, 2, 3, 5])[problem["labels"] % 4]
    out, info = _run(problem, labels, n_components=6, iterations=8, return_info=True)
    assert info["prune_iterations"] == [3, 5, 7]
    n = info["n_components"]
    assert n[:3].tolist() == [6, 6, 6] and n[3] <= 4
    for i in range(1, 8):  # the count changes only right after a scheduled iteration
        if i not in info["prune_iterations"]:
            assert n[i] == n[i - 1]
    assert 1 not in info["kept"] and 4 not in info["kept"]
    assert out.shape[2] == len(info["kept"]) == n[-1]


def test_no_pruning_with_zero_threshold_and_40_iteration_schedule(problem):
    out, info = _run(problem, problem["labels"], iterations=12, prune_every=100,
                     prune_threshold=0.0, return_info=True)
    assert info["prune_iterations"] == [4]
    assert out.shape[2] == C0 and info["kept"].tolist() == list(range(C0))


# --------------------------------------------------------------------------- whole runs
@pytest.fixture(scope="module")
def full_run(problem):
    """The default 40-iteration schedule on 10 k-means components, computed once."""
    labels = kmeans_init(problem["img"], 10, random_state=1)
    return constrained_sparsification(problem["vecs"], problem["vals"], labels, SHAPE,
                                      n_components=10, return_info=True)


def test_output_sums_to_one_exactly(full_run):
    out, info = full_run
    assert info["prune_iterations"] == [11, 21, 31]
    assert np.abs(out.sum(axis=2) - 1).max() < 1e-12
    assert np.isfinite(out).all()


def test_energy_is_the_spec_energy_and_does_not_increase(problem, full_run):
    out, info = full_run
    energy = info["energy"]
    assert np.isfinite(energy).all()
    # The recorded value is E_c of §10.1, evaluated here with L itself.
    assert energy[-1] == pytest.approx(_energy(problem["L"], _flat(out)), rel=1e-9)
    # Majorise–minimise: no increase while the component set is unchanged.
    for i in range(1, len(energy)):
        if i not in info["prune_iterations"]:  # iteration i (1-based) did not prune
            assert energy[i] <= energy[i - 1] * (1 + 1e-12) + 1e-9, i
    assert info["backward_error"].max() < 1e-14


def test_energy_with_normalized_laplacian(normalized_problem):
    p = normalized_problem
    out, info = _run(p, p["labels"], iterations=5, prune_threshold=0.0,
                     laplacian_ones=p["L"], return_info=True)
    assert info["energy"][-1] == pytest.approx(_energy(p["L"], _flat(out)), rel=1e-9)
    assert np.all(np.diff(info["energy"][1:]) <= 1e-9 * info["energy"][1:-1])


def test_deterministic_and_soft_init_equivalent(problem):
    a = _run(problem, problem["labels"], iterations=5)
    b = _run(problem, problem["labels"], iterations=5)
    np.testing.assert_array_equal(a, b)
    soft = _one_hot(problem["labels"], C0).reshape(SHAPE + (C0,))
    c = _run(problem, soft, iterations=5, n_components=99)  # soft init brings its own C
    np.testing.assert_array_equal(a, c)
    d = _run(problem, problem["labels"].reshape(SHAPE), iterations=5)  # (H, W) labels
    np.testing.assert_array_equal(a, d)


def test_thread_count_does_not_change_the_result(problem):
    a = _run(problem, problem["labels"], iterations=3, n_threads=1)
    b = _run(problem, problem["labels"], iterations=3, n_threads=2)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)


def test_convergence_warning_plumbing(problem, monkeypatch):
    monkeypatch.setattr(cs, "_BERR_WARN", -1.0)
    with pytest.warns(ConvergenceWarning, match="backward error"):
        _run(problem, problem["labels"], iterations=1)


def test_single_component_left_is_constant_one(problem):
    init = np.zeros(SHAPE + (3,))
    init[..., 0] = 1.0
    out = _run(problem, init, iterations=4, prune_every=1, prune_threshold=0.5)
    assert out.shape[2] == 1
    np.testing.assert_allclose(out[..., 0], 1.0, atol=1e-12)


# --------------------------------------------------------------------------- devices
XP = ["numpy", pytest.param("cupy", marks=pytest.mark.gpu)]


def _close(got, want, rel):
    """``max |got − want| <= rel · max |want|``, on the host."""
    got, want = to_host(got), to_host(want)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= rel * np.abs(want).max()


def _mixed_alpha(labels, C, seed=0):
    """One-hot layers (constant weights) but the first three (varying weights)."""
    alpha = _one_hot(labels, C)
    alpha[:, :3] = np.random.default_rng(seed).uniform(-0.2, 1.2, (labels.size, 3))
    return alpha


@pytest.mark.parametrize("xp_name", XP)
def test_array_pixel_work_equals_numba_pixel_work(problem, xp_name):
    """update, select and grams of the array code against the Numba kernels in threads."""
    xp = importlib.import_module(xp_name)
    E = np.ascontiguousarray(problem["vecs"])
    K = E.shape[1]
    # Blocks of 256 pixels on two threads: the Numba side sums several parts.
    threaded = cs._ThreadedPixelWork(E, 2, block=256)
    array = cs._ArrayPixelWork(xp.asarray(E), xp)
    rng = np.random.default_rng(1)
    for Y in (None, 0.3 * rng.standard_normal((K, C0 - 1))):
        a_threaded = _mixed_alpha(problem["labels"], C0)
        a_array = xp.asarray(a_threaded)
        w_threaded, energy_threaded, max_threaded = threaded.update(Y, a_threaded, GAMMA)
        w_array, energy_array, max_array = array.update(Y, a_array, GAMMA)
        _close(a_array, a_threaded, 1e-13)
        for got, want in zip(w_array[:3], w_threaded[:3]):  # sw, e0, e1
            assert type(got) is xp.ndarray
            np.testing.assert_allclose(to_host(got), want, rtol=1e-12, atol=0)
        np.testing.assert_allclose(energy_array, energy_threaded, rtol=1e-12)
        np.testing.assert_allclose(max_array, max_threaded, rtol=1e-13)
        constant = ~np.isnan(w_threaded.constant)
        assert constant.sum() == (0 if Y is not None else C0 - 3)
        np.testing.assert_array_equal(np.isnan(w_array.constant), ~constant)
        np.testing.assert_allclose(w_array.constant[constant], w_threaded.constant[constant],
                                   rtol=1e-13)
        # All layers, then a prune (the Numba select compacts its buffers in place).
        for keep in (np.arange(C0), np.array([0, 2, 4, 5, 7])):
            wt = threaded.select(a_threaded.copy(), w_threaded, keep)[1]
            wa = array.select(a_array, w_array, keep)[1]
            G_threaded, B_threaded = threaded.grams(wt)
            G_array, B_array = array.grams(wa)
            assert isinstance(G_array, np.ndarray) and isinstance(B_array, np.ndarray)
            for k in range(keep.size):
                _close(G_array[k], G_threaded[k], 1e-12)
            for k in range(keep.size):
                _close(B_array[:, k], B_threaded[:, k], 1e-12)


def test_array_pixel_work_batches_the_gram_products(problem, monkeypatch):
    """Chunks of pixels and groups of layers smaller than the problem: the same G."""
    E = np.ascontiguousarray(problem["vecs"])
    K = E.shape[1]
    alpha = _mixed_alpha(problem["labels"], C0)
    array = cs._ArrayPixelWork(E, np)
    weights = array.update(None, alpha, GAMMA)[0]
    whole = array.grams(weights)
    monkeypatch.setattr(cs, "_GRAM_ROWS", 100)  # 8 chunks, the last one short
    monkeypatch.setattr(cs, "_GRAM_BYTES", 2 * 100 * K * 8)  # two layers at a time
    chunked = array.grams(weights)
    for got, want in zip(chunked, whole):
        _close(got, want, 1e-13)


@pytest.fixture
def array_work_on_cpu(monkeypatch):
    """Run the stage's GPU code (``_ArrayPixelWork``) with NumPy on the CPU."""
    monkeypatch.setattr(cs, "_pixel_work", lambda E, backend, n_threads: cs._ArrayPixelWork(E, np))


def _pruning_run(problem, **kw):
    """12 iterations on 6 components of which two are empty: prunes after 4, 7, 10."""
    labels = np.array([0, 2, 3, 5])[problem["labels"] % 4]
    return _run(problem, labels, n_components=6, iterations=12, return_info=True, **kw)


def _same_run(got, want, rtol=1e-6):
    (a, info_a), (b, info_b) = got, want
    assert info_a.keys() == info_b.keys()
    assert info_a["timings"].keys() == info_b["timings"].keys()
    assert info_b["prune_iterations"] == [4, 7, 10] and info_b["n_components"][-1] < 6
    np.testing.assert_array_equal(info_a["n_components"], info_b["n_components"])
    np.testing.assert_array_equal(info_a["kept"], info_b["kept"])
    np.testing.assert_allclose(info_a["energy"], info_b["energy"], rtol=rtol)
    np.testing.assert_allclose(to_host(a), to_host(b), rtol=0, atol=1e-5)


def test_array_pixel_work_whole_run_matches_numba(problem, request):
    want = _pruning_run(problem)
    request.getfixturevalue("array_work_on_cpu")
    got = _pruning_run(problem)
    _same_run(got, want)
    assert np.abs(got[0].sum(axis=2) - 1).max() < 1e-12


def test_bad_device_raises(problem):
    with pytest.raises(ValueError, match="device"):
        _run(problem, problem["labels"], iterations=1, device="tpu")


@pytest.mark.gpu
def test_gpu_matches_cpu_iteration_by_iteration(problem):
    """NumPy in, NumPy out: the GPU run follows the CPU run's energies and prunes."""
    cpu = _pruning_run(problem)
    gpu = _pruning_run(problem, device="gpu")
    assert type(gpu[0]) is np.ndarray
    _same_run(gpu, cpu)


@pytest.mark.gpu
def test_gpu_cupy_in_cupy_out_and_sums_to_one(problem, full_run):
    import cupy

    labels = kmeans_init(problem["img"], 10, random_state=1)
    E, lam = cupy.asarray(problem["vecs"]), cupy.asarray(problem["vals"])
    out, info = constrained_sparsification(E, lam, cupy.asarray(labels), SHAPE, n_components=10,
                                           return_info=True)  # device=None: where E is
    assert type(out) is cupy.ndarray and out.shape == SHAPE + (len(info["kept"]),)
    assert float(cupy.abs(out.sum(axis=2) - 1).max()) < 1e-12
    assert info["prune_iterations"] == full_run[1]["prune_iterations"]
    # The first iterations, before rounding grows (module docstring), follow the CPU's.
    np.testing.assert_allclose(info["energy"][:8], full_run[1]["energy"][:8], rtol=1e-8)
    on_cpu = constrained_sparsification(E, lam, labels, SHAPE, n_components=10, iterations=2,
                                        device="cpu")
    assert type(on_cpu) is cupy.ndarray


@pytest.mark.gpu
def test_gpu_validates_cupy_inputs(problem):
    import cupy

    E, lam, labels = problem["vecs"], problem["vals"], problem["labels"]

    def run(eigvecs=E, eigvals=lam, init=labels, **kw):
        return constrained_sparsification(cupy.asarray(eigvecs), cupy.asarray(eigvals),
                                          cupy.asarray(init), SHAPE, n_components=C0,
                                          iterations=1, **kw)

    bad = E.copy()
    bad[3, 2] = np.inf
    with pytest.raises(ValueError, match="eigvecs has non-finite"):
        run(eigvecs=bad)
    with pytest.raises(ValueError, match="eigvecs must have shape"):
        run(eigvecs=E[:, 0])
    with pytest.raises(TypeError, match="eigvecs must be real"):
        run(eigvecs=E * 1j)
    with pytest.raises(ValueError, match="eigvals must have shape"):
        run(eigvals=lam[:-1])
    with pytest.raises(ValueError, match=r"init labels.*\[0, 7\]"):
        run(init=np.where(labels == 0, C0, labels))
    with pytest.raises(ValueError, match="device"):
        run(device="tpu")
    with pytest.raises(ValueError, match="eigvecs has non-finite"):
        constrained_sparsification(bad, lam, labels, SHAPE, n_components=C0, device="gpu")


# --------------------------------------------------------------------------- k-means init
def test_kmeans_init(problem):
    img = problem["img"]
    a = kmeans_init(img, 12, random_state=5)
    b = kmeans_init(img, 12, random_state=5)
    assert a.shape == (SHAPE[0] * SHAPE[1],) and a.dtype == np.int64
    assert a.min() >= 0 and a.max() <= 11
    np.testing.assert_array_equal(a, b)
    g = kmeans_init(img, 12, random_state=np.random.default_rng(0))
    assert g.shape == a.shape
    with pytest.raises(ValueError, match="features"):
        kmeans_init(img[..., 0], 12)
    with pytest.raises(ValueError, match="n_components"):
        kmeans_init(img, 0)
    with pytest.raises(ValueError, match="n_components"):
        kmeans_init(img[:2, :2], 5)
    bad = img.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        kmeans_init(bad, 4)


@pytest.mark.parametrize("max_samples", [None, 200])
def test_kmeans_init_labels_by_nearest_fitted_centre(problem, max_samples):
    """Centres fitted on a subsample, or on other features, label every pixel by nearest centre."""
    img = problem["img"]
    centres = seeded_kmeans(img.reshape(-1, 3), 6, random_state=2, n_init=1,
                            max_samples=max_samples)
    other = img[::2, ::3]
    for features, fit_features in [(img, None), (other, img)]:
        labels = kmeans_init(features, 6, random_state=2, max_samples=max_samples,
                             fit_features=fit_features)
        X = features.reshape(-1, 3)
        d = ((X[:, None, :] - centres[None]) ** 2).sum(axis=2)
        assert labels.shape == (len(X),)
        assert (d[np.arange(len(X)), labels] <= d.min(axis=1) + 1e-12).all()


def test_seeded_kmeans_is_lloyd_converged_and_keeps_the_best_run(problem):
    """Against scikit-learn's k-means (a peer): a local optimum no worse than its best of 10."""
    from sklearn.cluster import KMeans

    X = problem["img"].reshape(-1, 3)
    centres = seeded_kmeans(X, 6, random_state=0, n_init=5)
    labels = ((X[:, None] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
    # A Lloyd fixed point: every centre is the mean of the points nearest to it.
    for k in np.unique(labels):
        np.testing.assert_allclose(centres[k], X[labels == k].mean(axis=0), atol=1e-10)
    inertia = ((X - centres[labels]) ** 2).sum()
    assert inertia <= KMeans(6, n_init=10, random_state=0).fit(X).inertia_ * (1 + 1e-3)


def test_seeded_kmeans_stops_at_scipys_fixed_point(problem):
    """Stopping when no label changes gives the centres of SciPy's kmeans2 run to 100 steps."""
    from scipy.cluster.vq import kmeans2

    X = problem["img"].reshape(-1, 3)
    for seed in range(3):
        centres = seeded_kmeans(X, 6, random_state=seed)
        reference, _ = kmeans2(X, 6, iter=100, minit="++", seed=np.random.default_rng(seed))
        np.testing.assert_allclose(centres, reference, rtol=0, atol=1e-12)


def test_kmeans_init_checks(problem):
    img = problem["img"]
    with pytest.raises(ValueError, match="fit_features"):
        kmeans_init(img, 6, fit_features=img[..., :2])
    with pytest.raises(ValueError, match="max_samples"):
        kmeans_init(img, 6, max_samples=3)


# --------------------------------------------------------------------------- validation
def test_bad_inputs_raise(problem):
    E, lam, labels = problem["vecs"], problem["vals"], problem["labels"]

    def run(**kw):
        args = {"eigvecs": E, "eigvals": lam, "init": labels, "shape": SHAPE, "n_components": C0,
                "iterations": 1}
        args.update(kw)
        return constrained_sparsification(**args)

    bad = E.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="eigvecs"):
        run(eigvecs=bad)
    with pytest.raises(ValueError, match="eigvecs"):
        run(eigvecs=E[:, 0])
    with pytest.raises(ValueError, match="eigvals"):
        run(eigvals=lam[:-1])
    with pytest.raises(ValueError, match="shape"):
        run(shape=(24, 31))
    with pytest.raises(ValueError, match=r"init labels.*\[0, 7\]"):
        run(init=np.where(labels == 0, C0, labels))
    with pytest.raises(ValueError, match=r"init labels"):
        run(init=labels - 1)
    with pytest.raises(TypeError, match="init labels"):
        run(init=labels + 0.5)
    with pytest.raises(ValueError, match="init"):
        run(init=labels[:-1])
    with pytest.raises(ValueError, match="init"):
        run(init=np.ones((24, 30, 4)) / 4)
    with pytest.raises(ValueError, match="at least 2"):
        run(init=np.ones(SHAPE + (1,)))
    with pytest.raises(ValueError, match="n_components"):
        run(n_components=1)
    with pytest.raises(ValueError, match="iterations"):
        run(iterations=0)
    with pytest.raises(ValueError, match="sparsity"):
        run(sparsity=2.0)
    with pytest.raises(ValueError, match="prune_threshold"):
        run(prune_threshold=-0.1)
    with pytest.raises(ValueError, match="laplacian_ones"):
        run(laplacian_ones=np.zeros(5))
    with pytest.raises(ValueError, match="prune_every"):
        run(prune_every=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run()  # the defaults are fine and silent
