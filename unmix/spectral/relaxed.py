"""Relaxed sparsification: the last stage of semantic soft segmentation.

Starting from the grouped soft segments α̂ (H×W×K, K = 5), minimise (paper
Eqs. 7–11, spec ``sss.md`` §12)

.. math::

    E(α) = \\sum_i α_i^T L α_i
         + σ_S \\sum_{i,p} \\big(|α_{ip}|^{γ_p} + |1 - α_{ip}|^{γ_p}\\big)
         + σ_F \\sum_{i,p} (α_{ip} - \\hat α_{ip})^2
         + δ \\sum_p \\big(1 - \\sum_i α_{ip}\\big)^2

by iteratively reweighted least squares: each step replaces the sparsity
term by the quadratic Σ u α² + v (1 − α)² with u = max(|α′|, 0.01)^(γ_p−2),
v = max(|1 − α′|, 0.01)^(γ_p−2) at the previous iterate α′ and solves the
linear system of paper Eq. 17,

.. math:: \\big(\\mathcal L + σ_S (D_u + D_v) + σ_F I + δ C^T C\\big)\\, a = σ_S v + σ_F \\hat a + δ 1,

by preconditioned conjugate gradients. The K·N system is never assembled:
its product with the unknowns X (N×K, one column per layer) is
``L X + δ (X 1) 1ᵀ + d ⊙ X`` (one sparse product plus per-pixel terms), and
its per-pixel K×K diagonal blocks, ``diag(L_pp + d_p) + δ 1 1ᵀ``, are inverted
in closed form (Sherman–Morrison) as a block-Jacobi preconditioner.

The IRLS step is a majorise–minimise step (t ↦ max(t, 10⁻⁴)^{γ/2} is
concave in t = α²), so with exact solves it never increases
:func:`relaxed_energy`, which is E with each sparsity term weighted by 2/γ_p
and the floor applied: the energy whose stationary points the released code
reaches (spec §12.2).

One solver runs on both devices: :class:`_RelaxedSystem` holds the PCG loop
and delegates its vector work to a kernel set, fused Numba kernels on the
CPU (:class:`_NumbaKernels`) or whole-array expressions on an array module,
CuPy on the GPU (:class:`_ArrayKernels`, which NumPy runs too, so that the
GPU's kernels are tested against the CPU's without a GPU).
"""

import numpy as np
from numba import njit, prange
from numba.cpython.unsafe.tuple import tuple_setitem

from .._backend import get_backend, issparse, like_input, to_host
from .._checks import as_array, choice, flag, integer, positive, real, symmetric_operator
from .._numba import threads_for
from ..filters import image_gradient
from ..image import as_float_image
from ..linalg import PCGResult

__all__ = ["relaxed_sparsification", "relaxed_energy", "sparsity_exponent"]


def sparsity_exponent(image):
    """Per-pixel sparsity exponent ``γ_p = 0.9 + min(|∇I|_p, 0.1)`` (paper Eq. 10b).

    Sparser (smaller γ) in flat regions, nearly quadratic across edges where
    soft transitions belong.

    Examples
    --------
    >>> from unmix.image import example_image
    >>> from unmix.spectral import sparsity_exponent
    >>> gamma = sparsity_exponent(example_image("coffee", (24, 32)))
    >>> gamma.shape, bool(0.9 <= gamma.min() and gamma.max() <= 1.0)
    ((24, 32), True)
    """
    return 0.9 + np.minimum(image_gradient(as_float_image(image)), 0.1)


#: The largest weight σ_S, σ_F or δ (lam) accepted.
MAX_WEIGHT = 1e12


def _threshold_target(alphas):
    """The fidelity target α̂ of the released code: snap < 0.1 to 0, > 0.9 to 1, renormalise."""
    xp = get_backend(None, alphas).xp
    target = xp.where(alphas < 0.1, 0.0, xp.where(alphas > 0.9, 1.0, alphas))
    # Inputs that sum to one have one alpha >= 1/K >= 0.1, so the sum is positive; where
    # every alpha is below 0.1 (inputs that do not sum to one), the target is uniform.
    total = target.sum(axis=1, keepdims=True)
    return xp.where(total > 0, target / xp.where(total > 0, total, 1.0), 1.0 / alphas.shape[1])


def relaxed_sparsification(alphas, L, image, iterations=20, sigma_s=1.0, sigma_f=1.0,
                           lam=100.0, rtol=1e-6, maxiter=100, final_maxiter=1000,
                           preconditioner="block-jacobi", floor=0.01, gamma=None,
                           return_info=False, device=None, _kernels=None):
    """Relaxed sparsification of grouped soft segments (spec ``sss.md`` §12).

    Parameters
    ----------
    alphas : array_like, shape (H, W, K)
        Grouped soft segments that sum to one (the output of
        :func:`~unmix.spectral.group_segments`); a NumPy or CuPy array.
    L : sparse matrix, shape (N, N)
        The SSS Laplacian (:func:`~unmix.graph.sss_laplacian`), N = H·W; a
        SciPy or ``cupyx.scipy.sparse`` matrix, real and symmetric (integer
        entries are converted to float64). It may be slightly indefinite, as
        the SSS Laplacian is, as long as the IRLS system it enters stays
        positive definite.
    image : array_like, shape (H, W, 3)
        The image, for the per-pixel sparsity exponent γ_p.
    iterations : int, optional
        Number of IRLS steps (20).
    sigma_s, sigma_f : float, optional
        σ_S and σ_F, the weights of the sparsity and fidelity terms (1, 1).
    lam : float, optional
        δ, the paper's λ: weight of the soft sum-to-one term (100). Each
        weight lies in (0, 1e12].
    rtol, maxiter : optional
        Relative-residual tolerance and iteration cap of each inner PCG
        solve (1e-6, 100, as the released code); a solve that stops early
        returns its iterate of smallest residual, as MATLAB's ``pcg`` does.
    final_maxiter : int, optional
        Iteration cap of the final solve without the sparsity term (1000).
    preconditioner : {"block-jacobi", None}, optional
        The per-pixel K×K block-Jacobi preconditioner (default), or none,
        which is what the released code does. With none, the 100-iteration
        truncation of every solve is part of the result; the preconditioned
        solves converge, so their result is closer to the IRLS iterates'
        fixed point and differs from the released code's by the truncation.
    floor : float, optional
        The IRLS weights use ``max(|α|, floor)``, floor in (0, 1]; 0.01 in the
        released code.
    gamma : array_like, shape (H, W), optional
        Per-pixel exponents γ_p; computed from ``image`` by
        :func:`sparsity_exponent` by default.
    return_info : bool, optional
        Also return a dict with the energy after each step, the inner
        iterations and residuals.
    device : {None, "cpu", "gpu"}, optional
        Where to run. ``None`` runs on the GPU if ``alphas``, ``L``,
        ``image`` or ``gamma`` is a CuPy array (or a cupyx sparse matrix)
        and on the CPU otherwise; the inputs are moved to the device once.
        The GPU's result differs from the CPU's by rounding, amplified only
        where it moves the iteration at which a truncated solve stops:
        within 1e-5 at the default tolerances.

    Returns
    -------
    alphas : ndarray, shape (H, W, K)
        Not clamped: values lie in about [-0.1, 1.1] and sum to one up to
        about 1e-5, as in the released code. A CuPy array if an input was
        one, else a NumPy array (also after a GPU run on NumPy inputs).
    info : dict
        Only if ``return_info``.

    Raises
    ------
    TypeError, ValueError
        If ``device`` is not None, "cpu" or "gpu", or an input is invalid:
        among others, an ``L`` that is not symmetric (checked on random
        vectors), or so indefinite that the IRLS system is not positive
        definite (found by the solver's negative curvature).
    unmix._backend.GPUUnavailableError
        If the GPU is asked for, by ``device`` or a CuPy input, and CuPy
        or a CUDA device is missing.

    Examples
    --------
    Relax two complementary layers on a photograph's matting Laplacian: they
    keep their sum to one and fit the image's edges:

    >>> import numpy as np
    >>> from unmix.graph import matting_laplacian
    >>> from unmix.image import example_image
    >>> from unmix.spectral import relaxed_sparsification
    >>> image = example_image("coffee", (24, 32))
    >>> left = np.tile(np.linspace(1.0, 0.0, 32), (24, 1))
    >>> alphas = np.dstack([left, 1.0 - left])
    >>> relaxed = relaxed_sparsification(alphas, matting_laplacian(image), image, iterations=3)
    >>> relaxed.shape, bool(np.abs(relaxed.sum(axis=2) - 1).max() < 1e-4)
    ((24, 32, 2), True)
    """
    # ``_kernels`` ("numba" or "array") overrides the kernel set of the
    # device (see _RelaxedSystem); the tests run the GPU's array kernels on NumPy with it.
    inputs = (alphas, L, image, gamma)
    backend = get_backend(device, *inputs)
    xp = backend.xp
    dtype = getattr(alphas, "dtype", None)
    dtype = as_array(alphas, "alphas").dtype if dtype is None else dtype
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise TypeError(f"alphas must be a real array, got dtype {dtype}")
    alphas = backend.asarray(alphas)
    if alphas.ndim != 3 or alphas.shape[2] < 2:
        raise ValueError(f"alphas must have shape (H, W, K) with K >= 2, got shape {alphas.shape}")
    if not xp.isfinite(alphas).all():
        raise ValueError("alphas contain NaN or infinite values")
    height, width, K = alphas.shape
    N = height * width
    if not issparse(L) or L.shape != (N, N):
        raise ValueError(
            f"L must be a sparse ({N}, {N}) matrix for alphas of shape {alphas.shape}, "
            f"got {type(L).__name__} of shape {getattr(L, 'shape', None)}"
        )
    if not (np.issubdtype(L.dtype, np.floating) or np.issubdtype(L.dtype, np.integer)):
        raise TypeError(f"L must be a real matrix, got dtype {L.dtype}")
    L = backend.csr(L)
    if not xp.isfinite(L.data).all():
        raise ValueError("L contains NaN or infinite values")
    symmetric_operator(L, "L", xp)
    if gamma is None:
        # γ is one cheap filter of the image: computed on the CPU, then moved.
        image = as_float_image(to_host(image))
        if image.shape[:2] != (height, width):
            raise ValueError(f"image has shape {image.shape[:2]}, alphas have {(height, width)}")
        gamma = sparsity_exponent(image)
    gamma = backend.asarray(gamma)
    if gamma.shape != (height, width) or not xp.isfinite(gamma).all():
        raise ValueError(f"gamma must be a finite ({height}, {width}) array, got shape {gamma.shape}")
    # Weights beyond 1e12 square past float64's range in the solver's products.
    sigma_s, sigma_f, lam = (real(name, value, 0.0, MAX_WEIGHT, low_open=True) for name, value
                             in (("sigma_s", sigma_s), ("sigma_f", sigma_f), ("lam", lam)))
    floor = real("floor", floor, 0.0, 1.0, low_open=True)
    rtol = positive("rtol", rtol)
    maxiter, final_maxiter = integer("maxiter", maxiter, 1), integer("final_maxiter",
                                                                      final_maxiter, 1)
    choice("preconditioner", preconditioner, ("block-jacobi", None))
    iterations = integer("iterations", iterations, 0)
    return_info = flag("return_info", return_info)

    target = _threshold_target(alphas.reshape(N, K))
    gamma = xp.ascontiguousarray(gamma.reshape(N))
    system = _RelaxedSystem(L, gamma, floor, lam, target, preconditioned=preconditioner is not None,
                            kernels=_kernels)
    info = {"energy": [], "pcg_iterations": [], "pcg_residuals": []}

    def record_energy():
        if return_info:  # an extra sparse product and two powers per entry: only on request
            info["energy"].append(
                relaxed_energy(system.x, L, gamma, target, sigma_s, sigma_f, lam, floor))

    def record_solve(result):
        info["pcg_iterations"].append(result.iterations)
        info["pcg_residuals"].append(result.residual)

    record_energy()
    for _ in range(iterations):
        record_solve(system.solve(target, sigma_s, sigma_f, rtol, maxiter))
        record_energy()
    # Final solve without the sparsity term (σ_S = 0, σ_F = 1), the current x
    # as fidelity target (released code only): (blkdiag(L) + δ CᵀC + I) a = x + δ 1.
    record_solve(system.solve(system.x, 0.0, 1.0, rtol, final_maxiter))
    out = like_input(system.x.reshape(height, width, K), *inputs)
    return (out, info) if return_info else out


def _not_positive_definite(evidence):
    """The error for an IRLS system that is not positive definite (Eq. 17's A).

    The fidelity term σ_F·I alone makes A positive definite for any L ⪰ −σ_F·I,
    so this means an L far more indefinite than a graph Laplacian.
    """
    return ValueError("L is too indefinite: the relaxed sparsification system "
                      f"blkdiag(L) + (IRLS weights) + δ·CᵀC is not positive definite ({evidence}); "
                      "L must be a graph Laplacian such as unmix.graph.sss_laplacian's")


class _RelaxedSystem:
    """The IRLS steps of relaxed sparsification: Eq. 17 at the iterate, solved by a fused PCG.

    Everything is pixel-major (N×K, one column per layer), so one row of the
    sparse product reads L once for all K layers. The solver is
    :func:`unmix.linalg.pcg` (MATLAB semantics: relative residual
    ‖b − A x‖/‖b‖, warm start, the iterate of smallest residual when it
    stops early, its true residual reported) with its vector operations
    grouped into three calls per iteration (the kernel set's ``product``,
    ``cg_update`` and ``cg_direction``: one pass over memory each with the
    Numba kernels) and no allocation beyond the sparse product's. The loop
    is written once; the kernel set decides where and how the operations
    run (:class:`_NumbaKernels`, :class:`_ArrayKernels`).

    The object owns the iterate x (:attr:`x`): each step starts from it and
    replaces it. It also keeps A x up to date, so that no step needs a
    sparse product for its initial residual: a solve ends with the product
    that gives its true residual, and the next step, which changes only the
    diagonal d of A, corrects it by (d_new − d_old) ⊙ x.

    Parameters
    ----------
    L : csr_matrix, shape (N, N)
        SciPy's, or cupyx's for the GPU.
    gamma : ndarray, shape (N,)
        Per-pixel sparsity exponents γ_p, on L's device.
    floor : float
        The floor of the IRLS weights.
    lam : float
        δ, the weight of the soft sum-to-one term.
    x0 : ndarray, shape (N, K)
        The initial iterate, on L's device.
    preconditioned : bool
        Use the per-pixel K×K block-Jacobi preconditioner.
    kernels : {None, "numba", "array"}, optional
        The kernel set; None: "array" on the GPU, "numba" on the CPU.
    """

    def __init__(self, L, gamma, floor, lam, x0, preconditioned, kernels=None):
        N, K = x0.shape
        if kernels is None:
            kernels = "array" if get_backend(None, L, x0).is_gpu else "numba"
        self.kernels = _KERNEL_SETS[kernels](L, gamma, float(floor), float(lam), K, preconditioned)
        xp, order = self.kernels.xp, self.kernels.order

        def buffer():
            return xp.empty((N, K), order=order)

        # Three iterate buffers: the current one, the one of smallest
        # residual and the next one, so that tracking the best is free of copies.
        self.iterates = [xp.array(x0, dtype=np.float64, order=order), buffer(), buffer()]
        self.current = 0
        self.d = xp.zeros((N, K), order=order)  # the diagonal of A beyond blkdiag(L) + δ CᵀC
        self.rhs, self.Ax, self.q, self.r = buffer(), buffer(), buffer(), buffer()
        self.p = xp.zeros((N, K), order=order)
        # Without a preconditioner z = r: the same buffer, which the kernels then leave alone.
        self.z = buffer() if preconditioned else self.r
        with threads_for(N):
            self.kernels.product(self.x, self.d, self.Ax)

    @property
    def x(self):
        """The current iterate, shape (N, K)."""
        return self.iterates[self.current]

    def solve(self, target, sigma_s, sigma_f, rtol, maxiter):
        """One IRLS step (spec §12.3 step 3): Eq. 17 at the iterate x, solved by PCG from x.

        Parameters
        ----------
        target : ndarray, shape (N, K)
            The fidelity target α̂.
        sigma_s, sigma_f : float
            σ_S and σ_F; σ_S = 0 drops the sparsity term.
        rtol, maxiter : float, int
            As :func:`unmix.linalg.pcg`.

        Returns
        -------
        PCGResult
            As :func:`unmix.linalg.pcg`; its solution becomes :attr:`x`.
        """
        kernels, iterates, p, r, q, z = self.kernels, self.iterates, self.p, self.r, self.q, self.z
        # threads_for sets the Numba kernels' thread count; the array kernels ignore it.
        with threads_for(r.shape[0]):
            # ‖b‖ > 0: b = σ_S v + σ_F α̂ + δ ≥ δ (v > 0, α̂ ≥ 0), or x + δ at the end.
            b_norm2, r_norm2, rho = kernels.irls_system(self.x, target, sigma_s, sigma_f, self.d,
                                                        self.rhs, self.Ax, r, z)
            norm_b, norm_r = np.sqrt(b_norm2), np.sqrt(r_norm2)
            current = best = self.current
            best_norm = norm_r
            iterations, beta = 0, 0.0
            while norm_r > rtol * norm_b and iterations < maxiter:
                if rho <= 0.0:
                    # r·z ≤ 0 with r ≠ 0: the block-Jacobi preconditioner, the inverse of
                    # A's diagonal blocks, is not positive definite, so neither is A.
                    raise _not_positive_definite(f"rᵀM⁻¹r = {rho:.3g}")
                if iterations == 0:
                    kernels.xp.copyto(p, z)
                else:
                    kernels.cg_direction(z, beta, p)
                curvature = kernels.product(p, self.d, q)
                if curvature <= 0.0:  # pᵀAp ≤ 0 with p ≠ 0
                    raise _not_positive_definite(f"pᵀAp = {curvature:.3g} along a PCG direction")
                following = next(i for i in range(3) if i not in (current, best))
                r_norm2, next_rho = kernels.cg_update(rho / curvature, iterates[current], p, r, q,
                                                      iterates[following], z)
                beta, rho = next_rho / rho, next_rho
                current, norm_r = following, np.sqrt(r_norm2)
                iterations += 1
                if norm_r < best_norm:
                    best, best_norm = current, norm_r
            converged = norm_r <= rtol * norm_b
            self.current = current if converged else best
            # The recursively updated residual drifts from the true one; report the truth.
            kernels.product(self.x, self.d, self.Ax)
            residual = np.sqrt(kernels.squared_distance(self.rhs, self.Ax)) / norm_b
        return PCGResult(self.x, float(residual), iterations, converged)


class _NumbaKernels:
    """The vector work of :class:`_RelaxedSystem` as fused Numba kernels (the CPU's).

    Each operation is one parallel pass over memory (the njit functions
    below); this class binds them to the fixed data of the system: L, γ,
    the floor, δ and the block-Jacobi preconditioner's buffers. Every
    :class:`_RelaxedSystem` kernel set has this interface.

    Parameters
    ----------
    L : scipy.sparse.csr_matrix, shape (N, N)
    gamma : ndarray, shape (N,)
    floor, lam : float
        The floor of the IRLS weights and δ.
    K : int
        The number of layers.
    preconditioned : bool
        Apply the block-Jacobi preconditioner (else z is r).

    Attributes
    ----------
    xp : module
        The array module of the operands (``numpy``).
    order : {"C", "F"}
        The memory order of the N×K operands ("C": a pixel's K values adjacent).
    """

    xp, order = np, "C"

    def __init__(self, L, gamma, floor, lam, K, preconditioned):
        N = L.shape[0]
        self.L, self.gamma, self.floor, self.lam = L, gamma, floor, lam
        self.preconditioned = preconditioned
        self.L_diagonal = L.diagonal()
        # max(|x|, floor)^(γ−2) for every entry at the floor (most of them:
        # the layers are sparse), computed once instead of once per step.
        self.floor_power = floor ** (gamma - 2.0)
        self.row_zeros = (0.0,) * K  # see _apply_relaxed
        self.inverse_D, self.coupling = np.empty((N, K)), np.empty(N)

    def product(self, X, d, out):
        """out = A X = L X + δ (X 1) 1ᵀ + d ⊙ X; returns Σ X ⊙ out."""
        return _apply_relaxed(self.L.indptr, self.L.indices, self.L.data, X, d, self.lam,
                              self.row_zeros, out)

    def irls_system(self, x, target, sigma_s, sigma_f, d, rhs, Ax, r, z):
        """Eq. 17 at x into d and rhs, A x updated, r = rhs − A x, z = M⁻¹ r.

        Returns ‖rhs‖², ‖r‖² and r·z (see :func:`_irls_system`).
        """
        return _irls_system(x, self.gamma, self.floor_power, target, self.floor, sigma_s, sigma_f,
                            self.lam, self.L_diagonal, d, rhs, Ax, self.inverse_D, self.coupling,
                            r, z, self.preconditioned)

    def cg_update(self, step, x, p, r, q, x_next, z):
        """x_next = x + step p, r −= step q, z = M⁻¹ r; returns ‖r‖² and r·z."""
        return _cg_update(step, x, p, r, q, x_next, self.inverse_D, self.coupling, z,
                          self.preconditioned)

    @staticmethod
    def cg_direction(z, beta, p):
        """p = z + β p."""
        _cg_direction(z, beta, p)

    @staticmethod
    def squared_distance(a, b):
        """‖a − b‖²."""
        return _squared_distance(a, b)


@njit(cache=True, parallel=True)
def _apply_relaxed(indptr, indices, data, X, d, lam, row_zeros, out):
    """out = L X + δ (X 1) 1ᵀ + d ⊙ X, one pixel row per task; returns Σ X ⊙ out.

    ``row_zeros`` is a tuple of K zeros: the K sums of a row live in a tuple
    (updated by numba's ``tuple_setitem``), so the kernel is compiled for
    this K and keeps them in registers; an array row would be stored and
    reloaded for every neighbour, about twice as slow (measured).
    """
    K = len(row_zeros)
    curvature = 0.0
    for p in prange(X.shape[0]):
        sums = row_zeros
        for j in range(indptr[p], indptr[p + 1]):
            q = indices[j]
            w = data[j]
            for k in range(K):
                sums = tuple_setitem(sums, k, sums[k] + w * X[q, k])
        total = 0.0
        for k in range(K):
            total += X[p, k]
        for k in range(K):
            out[p, k] = sums[k] + lam * total + d[p, k] * X[p, k]
            curvature += X[p, k] * out[p, k]
    return curvature


@njit(cache=True, parallel=True)
def _irls_system(x, gamma, floor_power, target, floor, sigma_s, sigma_f, lam, L_diagonal, d,
                 rhs, Ax, inverse_D, coupling, r, z, preconditioned):
    """Eq. 17, its preconditioner and the initial PCG residual at x (spec §12.3 step 3).

    u = max(|x|, floor)^(γ−2), v = max(|1 − x|, floor)^(γ−2) (``floor_power``
    is floor^(γ−2)); d = σ_S (u + v) + σ_F and rhs = σ_S v + σ_F α̂ + δ.
    Updates A x for the change of d, and the preconditioner: the diagonal
    block of pixel p is B_p = diag(D_p) + δ 1 1ᵀ with D_p = L_pp + d_p, and
    Sherman–Morrison gives B_p⁻¹ r = r/D − c Σ(r/D) / D with
    c = δ / (1 + δ Σ 1/D). Then r = rhs − A x and z = B⁻¹ r; returns
    ‖rhs‖², ‖r‖² and r·z.
    """
    K = x.shape[1]
    b_norm2 = r_norm2 = rho = 0.0
    for p in prange(x.shape[0]):
        power = gamma[p] - 2.0
        inverse_sum = 0.0
        for k in range(K):
            u = v = 0.0
            if sigma_s != 0.0:  # the final solve has no sparsity term
                a, b = abs(x[p, k]), abs(1.0 - x[p, k])
                u = floor_power[p] if a <= floor else a**power
                v = floor_power[p] if b <= floor else b**power
            weight = sigma_s * (u + v) + sigma_f
            Ax[p, k] += (weight - d[p, k]) * x[p, k]
            d[p, k] = weight
            rhs[p, k] = sigma_s * v + sigma_f * target[p, k] + lam
            inverse_D[p, k] = 1.0 / (L_diagonal[p] + weight)
            inverse_sum += inverse_D[p, k]
        coupling[p] = lam / (1.0 + lam * inverse_sum)
        for k in range(K):
            r[p, k] = rhs[p, k] - Ax[p, k]
            b_norm2 += rhs[p, k] * rhs[p, k]
            r_norm2 += r[p, k] * r[p, k]
        if preconditioned:
            rho += _block_jacobi_pixel(r, inverse_D, coupling, p, z)
    return b_norm2, r_norm2, rho if preconditioned else r_norm2


@njit(cache=True)
def _block_jacobi_pixel(r, inverse_D, coupling, p, z):
    """z_p = B_p⁻¹ r_p (Sherman–Morrison, see :func:`_irls_system`); returns r_p · z_p."""
    K = r.shape[1]
    s = 0.0
    for k in range(K):
        s += r[p, k] * inverse_D[p, k]
    c = coupling[p] * s
    rz = 0.0
    for k in range(K):
        z[p, k] = (r[p, k] - c) * inverse_D[p, k]
        rz += r[p, k] * z[p, k]
    return rz


@njit(cache=True, parallel=True)
def _cg_update(step, x, p, r, q, x_next, inverse_D, coupling, z, preconditioned):
    """x_next = x + step p, r −= step q, z = M⁻¹ r; returns ‖r‖² and r·z."""
    K = x.shape[1]
    r_norm2 = rho = 0.0
    for i in prange(x.shape[0]):
        for k in range(K):
            x_next[i, k] = x[i, k] + step * p[i, k]
            r[i, k] -= step * q[i, k]
            r_norm2 += r[i, k] * r[i, k]
        if preconditioned:
            rho += _block_jacobi_pixel(r, inverse_D, coupling, i, z)
    return r_norm2, rho if preconditioned else r_norm2


@njit(cache=True, parallel=True)
def _cg_direction(z, beta, p):
    """p = z + β p."""
    K = z.shape[1]
    for i in prange(z.shape[0]):
        for k in range(K):
            p[i, k] = z[i, k] + beta * p[i, k]


@njit(cache=True, parallel=True)
def _squared_distance(a, b):
    """‖a − b‖²."""
    K = a.shape[1]
    total = 0.0
    for i in prange(a.shape[0]):
        for k in range(K):
            total += (a[i, k] - b[i, k]) ** 2
    return total


class _ArrayKernels:
    """The vector work of :class:`_RelaxedSystem` as whole-array expressions (the GPU's).

    The same operations and results as :class:`_NumbaKernels`, written once
    against the array module of L (CuPy with a cupyx L, NumPy with a SciPy
    L, which is how the tests compare them on the CPU). Each fused Numba
    pass becomes a few ``out=`` passes into preallocated buffers; the sparse
    product is ``L @ X`` (cuSPARSE SpMM on the GPU), the only allocation.
    Reductions return Python floats, which on the GPU waits for the device:
    the loop needs them to decide its next step.

    The N×K operands are column-major (``order = "F"``, one layer after the
    other) because cuSPARSE's SpMM reads and writes column-major dense
    matrices, so ``L @ X`` copies nothing and every pass runs over
    contiguous arrays. Parameters as :class:`_NumbaKernels`.
    """

    order = "F"

    def __init__(self, L, gamma, floor, lam, K, preconditioned):
        xp = self.xp = get_backend(None, L, gamma).xp
        N = L.shape[0]
        self.L, self.floor, self.lam, self.preconditioned = L, floor, lam, preconditioned
        # Per-pixel values as (N, 1) columns, which broadcast over the K layers.
        self.exponent = (gamma - 2.0).reshape(N, 1)
        self.L_diagonal = L.diagonal().reshape(N, 1)
        self.inverse_D = xp.empty((N, K), order=self.order)
        self.coupling = xp.empty((N, 1))
        # Scratch: two N×K arrays and one per-pixel column.
        self.u, self.v = xp.empty((N, K), order=self.order), xp.empty((N, K), order=self.order)
        self.pixel = xp.empty((N, 1))

    def _dot(self, a, b):
        """Σ a ⊙ b as a float: one BLAS dot (over views of arrays in the kernels' order)."""
        return float(self.xp.dot(a.ravel(order=self.order), b.ravel(order=self.order)))

    def _layer_sum(self, X, out):
        """out = X 1, the (N, 1) column of each pixel's sum over the layers."""
        return self.xp.sum(X, axis=1, keepdims=True, out=out)

    def product(self, X, d, out):
        """out = A X = L X + δ (X 1) 1ᵀ + d ⊙ X; returns Σ X ⊙ out."""
        xp = self.xp
        LX = self.L @ X
        sum_term = self._layer_sum(X, self.pixel)  # δ (X 1), the same for every layer
        sum_term *= self.lam
        LX += sum_term
        xp.multiply(d, X, out=out)
        out += LX
        return self._dot(X, out)

    def irls_system(self, x, target, sigma_s, sigma_f, d, rhs, Ax, r, z):
        """Eq. 17 at x into d and rhs, A x updated, r = rhs − A x, z = M⁻¹ r.

        Returns ‖rhs‖², ‖r‖² and r·z (see :func:`_irls_system`). The weights
        are computed also when σ_S = 0, where they drop out exactly
        (0 · finite), which keeps the pass free of branches.
        """
        xp, u, v = self.xp, self.u, self.v
        # u = max(|x|, floor)^(γ−2), v = max(|1 − x|, floor)^(γ−2)
        xp.abs(x, out=u)
        xp.maximum(u, self.floor, out=u)
        xp.power(u, self.exponent, out=u)
        xp.subtract(1.0, x, out=v)
        xp.abs(v, out=v)
        xp.maximum(v, self.floor, out=v)
        xp.power(v, self.exponent, out=v)
        # The weight d_new = σ_S (u + v) + σ_F goes to u; rhs = σ_S v + σ_F α̂ + δ.
        u += v
        u *= sigma_s
        u += sigma_f
        xp.multiply(v, sigma_s, out=rhs)
        xp.multiply(target, sigma_f, out=v)
        rhs += v
        rhs += self.lam
        # A x follows the change of the diagonal: A x += (d_new − d) ⊙ x.
        xp.subtract(u, d, out=v)
        v *= x
        Ax += v
        xp.copyto(d, u)
        # Preconditioner: B_p = diag(D_p) + δ 1 1ᵀ, D_p = L_pp + d_p (Sherman–Morrison).
        xp.add(u, self.L_diagonal, out=self.inverse_D)
        xp.divide(1.0, self.inverse_D, out=self.inverse_D)
        coupling = self._layer_sum(self.inverse_D, self.coupling)
        coupling *= self.lam
        coupling += 1.0
        xp.divide(self.lam, coupling, out=coupling)
        xp.subtract(rhs, Ax, out=r)
        r_norm2 = self._dot(r, r)
        rho = self._block_jacobi(r, z) if self.preconditioned else r_norm2
        return self._dot(rhs, rhs), r_norm2, rho

    def _block_jacobi(self, r, z):
        """z = B⁻¹ r, B⁻¹ r = r/D − c Σ(r/D) / D per pixel (:func:`_irls_system`); returns r·z."""
        xp = self.xp
        xp.multiply(r, self.inverse_D, out=z)
        shift = self._layer_sum(z, self.pixel)
        shift *= self.coupling
        xp.subtract(r, shift, out=z)
        z *= self.inverse_D
        return self._dot(r, z)

    def cg_update(self, step, x, p, r, q, x_next, z):
        """x_next = x + step p, r −= step q, z = M⁻¹ r; returns ‖r‖² and r·z."""
        xp = self.xp
        xp.multiply(p, step, out=x_next)
        x_next += x
        xp.multiply(q, step, out=self.u)
        r -= self.u
        r_norm2 = self._dot(r, r)
        return r_norm2, (self._block_jacobi(r, z) if self.preconditioned else r_norm2)

    def cg_direction(self, z, beta, p):
        """p = z + β p."""
        p *= beta
        p += z

    def squared_distance(self, a, b):
        """‖a − b‖²."""
        self.xp.subtract(a, b, out=self.u)
        return self._dot(self.u, self.u)


_KERNEL_SETS = {"numba": _NumbaKernels, "array": _ArrayKernels}


def relaxed_energy(alphas, L, gamma, target, sigma_s=1.0, sigma_f=1.0, lam=100.0, floor=0.01):
    """The energy that the relaxed IRLS decreases (spec ``sss.md`` §12.2).

    E with each sparsity term replaced by (2/γ) ψ(α²), where ψ(t) = t^{γ/2}
    for t ≥ floor² and continues linearly below (the floor of the weights).
    Without the floor and the 2/γ factor this is the paper's Eq. 11.

    Parameters
    ----------
    alphas : ndarray, shape (N, K) or (H, W, K)
    L : sparse matrix, shape (N, N)
    gamma : ndarray, shape (N,), (H, W) or like alphas
        Per-pixel (or per pixel and layer) exponents.
    target : ndarray, like alphas
        The fidelity target α̂.
    sigma_s, sigma_f, lam, floor : float

    Returns
    -------
    energy : float
        Computed on the GPU if an input is a CuPy array (or a cupyx matrix).

    Examples
    --------
    The energy is lower after the IRLS than at its start:

    >>> import numpy as np
    >>> from unmix.graph import matting_laplacian
    >>> from unmix.image import example_image
    >>> from unmix.spectral import relaxed_energy, relaxed_sparsification, sparsity_exponent
    >>> image = example_image("coffee", (24, 32))
    >>> L = matting_laplacian(image)
    >>> left = np.tile(np.linspace(1.0, 0.0, 32), (24, 1))
    >>> alphas = np.dstack([left, 1.0 - left])
    >>> gamma = sparsity_exponent(image)
    >>> relaxed = relaxed_sparsification(alphas, L, image, iterations=3)
    >>> bool(relaxed_energy(relaxed, L, gamma, alphas) < relaxed_energy(alphas, L, gamma, alphas))
    True
    """
    backend = get_backend(None, alphas, L, gamma, target)
    xp = backend.xp
    K = alphas.shape[-1]
    X = backend.asarray(alphas).reshape(-1, K)
    target = backend.asarray(target).reshape(-1, K)
    gamma = backend.asarray(gamma)
    gamma = gamma.reshape(-1, 1) if gamma.size == X.shape[0] else gamma.reshape(X.shape)
    smoothness = float(xp.sum(X * (backend.csr(L) @ X)))

    def penalty(t):
        # ψ(t²) (2/γ): t^γ (2/γ) above the floor, tangent-line continuation below it.
        t2, f2 = t * t, floor * floor
        above = t2 ** (gamma / 2)
        below = f2 ** (gamma / 2) + (gamma / 2) * f2 ** (gamma / 2 - 1) * (t2 - f2)
        return (2.0 / gamma) * xp.where(t2 >= f2, above, below)

    sparsity = float(xp.sum(penalty(X) + penalty(1.0 - X)))
    fidelity = float(xp.sum((X - target) ** 2))
    constraint = float(xp.sum((1.0 - X.sum(axis=1)) ** 2))
    return smoothness + sigma_s * sparsity + sigma_f * fidelity + lam * constraint
