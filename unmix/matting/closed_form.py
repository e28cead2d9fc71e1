"""Closed-form matting with a trimap (Levin, Lischinski and Weiss, TPAMI 2008).

The matte minimises αᵀ L α, with L the matting Laplacian, subject to α = 1 on
the trimap's foreground and α = 0 on its background. Splitting the pixels into
unknown U and known K, the minimiser solves the reduced system

.. math::

    L_{UU}\\, \\alpha_U = -L_{UK}\\, \\alpha_K

(``spec/matting.md`` §1.4), which is symmetric positive definite as soon as
every unknown region shares a window with a known pixel, which holds for any
trimap with both a foreground and a background pixel.

Implementation
--------------
- Only the rows of the unknown pixels are assembled, from the windows that
  contain one (:func:`unmix.graph.matting_laplacian` with ``rows=``): time
  and memory follow the unknown region, not the image (§1.3).
- One pass over those rows splits them into L_UU (CSR) and the right-hand
  side −L_UK α_K (``_split_known``).
- L_UU is factored exactly by the multifrontal Cholesky of
  :func:`unmix.linalg.factorize`, in a grid nested-dissection order of the
  unknown pixels (:func:`unmix.linalg.grid_nested_dissection`, separators
  2r pixels wide: the stencil radius of L). That factor preconditions
  :func:`unmix.linalg.pcg`, which then converges in one or two iterations and
  certifies the residual. pymatting's thresholded incomplete Cholesky instead
  breaks down from about one megapixel (it retries with growing diagonal
  shifts, and CG then needs tens of iterations); a complete Cholesky factor
  of an SPD matrix does not, and since the unknown region of a trimap is a
  thin band it stays sparse: 85, 110 and 170 factor entries per unknown
  pixel at 0.3, 1.2 and 3.1 megapixels (measured, ``bench_matting.py``
  composites), against 25 per row of L_UU.
- Should the factorisation still fail (a numerically singular L_UU, e.g. an
  extreme ``eps``), L_UU + δI is factored instead, with δ a tiny fraction of
  the largest diagonal entry, and PCG iterates on the exact L_UU.
"""

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse
from numba import njit

from .._backend import get_backend, to_host
from .._blas import single_threaded_blas
from .._memory import check_memory, image_pixels
from .._checks import flag, integer, positive
from ..graph.matting import matting_laplacian
from ..image import as_float_image
from ..linalg import factorize, grid_nested_dissection, pcg
from .trimap import _check_thresholds, _split_values, _trimap_values

__all__ = ["MattingInfo", "closed_form_matting"]

log = logging.getLogger("unmix")

#: Relative diagonal shifts tried, in order, when L_UU cannot be factored.
_SHIFTS = (0.0, 1e-12, 1e-9, 1e-6)


@dataclass
class MattingInfo:
    """How :func:`closed_form_matting` solved its system.

    Attributes
    ----------
    n_unknown : int
        Unknown pixels, the size of the reduced system.
    iterations : int
        PCG iterations (one or two with the exact factor).
    residual : float
        Relative residual ‖L_UU α_U + L_UK α_K‖ / ‖L_UK α_K‖ before clipping.
    converged : bool
        Whether ``residual <= rtol``.
    shift : float
        The relative diagonal shift the preconditioner needed (0 normally).
    factor_nnz : int
        Stored entries of the Cholesky factor.
    timings : dict
        Seconds spent in each stage: ``laplacian``, ``ordering``,
        ``factorization``, ``solve``.

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.matting import closed_form_matting
    >>> image = np.zeros((9, 12, 3)); image[:, 6:] = 1.0
    >>> trimap = np.full((9, 12), 128, np.uint8)
    >>> trimap[:, :2], trimap[:, -2:] = 0, 255
    >>> alpha, info = closed_form_matting(image, trimap, return_info=True)
    >>> info.n_unknown, info.converged, sorted(info.timings)
    (72, True, ['factorization', 'laplacian', 'ordering', 'solve'])
    """

    n_unknown: int
    iterations: int = 0
    residual: float = 0.0
    converged: bool = True
    shift: float = 0.0
    factor_nnz: int = 0
    timings: dict = field(default_factory=dict)


@njit(cache=True)
def _split_known(indptr, indices, data, unknown_of, alpha_known):
    """Split the unknown pixels' Laplacian rows into L_UU and −L_UK α_K.

    ``unknown_of[p]`` is pixel p's index among the unknowns (−1 if known);
    they are numbered in row-major order, so the kept columns stay sorted.
    Returns L_UU's CSR arrays and the right-hand side.
    """
    n_rows = indptr.shape[0] - 1
    out_ptr = np.empty(n_rows + 1, np.int64)
    out_ptr[0] = 0
    for i in range(n_rows):
        count = 0
        for q in range(indptr[i], indptr[i + 1]):
            if unknown_of[indices[q]] >= 0:
                count += 1
        out_ptr[i + 1] = out_ptr[i] + count
    out_idx = np.empty(out_ptr[n_rows], indices.dtype)
    out_data = np.empty(out_ptr[n_rows])
    rhs = np.empty(n_rows)
    for i in range(n_rows):
        pos = out_ptr[i]
        coupling = 0.0
        for q in range(indptr[i], indptr[i + 1]):
            j = unknown_of[indices[q]]
            if j >= 0:
                out_idx[pos] = j
                out_data[pos] = data[q]
                pos += 1
            else:
                coupling += data[q] * alpha_known[indices[q]]
        rhs[i] = -coupling
    return out_ptr, out_idx, out_data, rhs


def _cholesky(A, tree, backend):
    """A Cholesky factor of A: multifrontal on the CPU, cuDSS on the GPU.

    Raises ``LinAlgError`` where A is not (numerically) positive definite: on the
    GPU also where cuDSS's factor misses the backward-error bound of a solve.
    """
    if not backend.is_gpu:
        return factorize(A, tree)
    from ..linalg.cudss import CuDSSFactor

    factor = CuDSSFactor(A, "spd")
    if not factor.backward_error <= 1e-10:
        factor.free()
        raise np.linalg.LinAlgError(
            f"cuDSS Cholesky factor has backward error {factor.backward_error:.2g}")
    return factor


def _factor(A, tree, info, backend):
    """The preconditioner ``r -> (A + δI)⁻¹ r`` by a Cholesky factor of A + δI.

    δ = 0 unless the factorisation fails; then δ grows through ``_SHIFTS``
    (relative to the largest diagonal entry). Records δ and the factor's
    size in ``info``. ``A`` is a SciPy matrix; on the GPU the factor (cuDSS)
    solves CuPy vectors.
    """
    n = A.shape[0]
    factor = None
    for shift in _SHIFTS:
        shifted = A
        if shift:
            shifted = A + scipy.sparse.identity(n, format="csr") * (shift * A.diagonal().max())
        try:
            factor = _cholesky(shifted, tree, backend)
            break
        except np.linalg.LinAlgError as exc:  # NotPositiveDefiniteError included
            log.info("closed-form matting: L_UU factorisation failed with shift %g (%s)",
                     shift, exc)
    if factor is None:
        raise np.linalg.LinAlgError(
            f"the reduced matting system L_UU could not be factored even with a diagonal "
            f"shift of {_SHIFTS[-1]:g}·max(diag); the image or eps makes it numerically singular")
    info.shift, info.factor_nnz = shift, int(factor.nnz)
    return factor.solve


def closed_form_matting(image, trimap, eps=1e-7, radius=1, *, fg_threshold=0.9,
                        bg_threshold=0.1, keep_trimap_values=False, rtol=1e-7, maxiter=50,
                        return_info=False, device="cpu"):
    """Alpha matte of an image from a trimap by Levin's closed-form matting.

    Parameters
    ----------
    image : array_like, shape (H, W, 3) or (H, W)
        The image: floats in [0, 1], ``uint8`` or ``uint16`` (see
        :func:`unmix.image.as_float_image`); float32 is accepted and
        computed in float64.
    trimap : array_like, shape (H, W)
        ``uint8`` 0 / 128 / 255 or floats in [0, 1] (see
        :func:`unmix.matting.split_trimap`).
    eps : float, optional
        The regulariser ε of the matting Laplacian (default 1e-7, Levin's and
        pymatting's).
    radius : int, optional
        The window radius r (default 1: 3×3 windows).
    fg_threshold, bg_threshold : float, optional
        Trimap foreground where t ≥ ``fg_threshold``, background where
        t ≤ ``bg_threshold`` (defaults 0.9 and 0.1, pymatting's).
    keep_trimap_values : bool, optional
        Write the trimap's own values into the known pixels, as pymatting
        does, instead of exact 0 and 1 (default False; the solve always uses
        α_K = 0 or 1).
    rtol : float, optional
        Relative residual at which PCG stops (default 1e-7, pymatting's).
    maxiter : int, optional
        Largest number of PCG iterations (default 50; one or two are used).
    return_info : bool, optional
        Also return a :class:`MattingInfo`.
    device : {"cpu", "gpu"}, optional
        Where the reduced system is factored and solved (``"cpu"``). On
        ``"gpu"`` L_UU is factored by cuDSS (nvmath-python, the ``gpu`` extra)
        and PCG runs on CuPy arrays; the Laplacian rows are assembled on the
        CPU either way, and the matte is returned as a NumPy array.

    Returns
    -------
    alpha : ndarray, shape (H, W), float64
        The matte, clipped to [0, 1].
    info : MattingInfo
        Only with ``return_info=True``.

    Raises
    ------
    ValueError, TypeError
        For an invalid image, a trimap of another shape or without a
        foreground or background pixel, or invalid parameters.

    Warns
    -----
    ConvergenceWarning
        If PCG stops above ``rtol`` (it returns its best iterate).

    See Also
    --------
    unmix.graph.matting_laplacian : The Laplacian L.
    unmix.matting.estimate_foreground : Foreground colours for the matte.
    unmix.metrics.sad : Matting metrics against a ground truth.

    Notes
    -----
    The result equals pymatting's ``estimate_alpha_cf`` on the same inputs
    up to its solver tolerance (both solve the same system), except that
    known pixels are exact 0 and 1 unless ``keep_trimap_values``. An empty
    unknown region needs no solve: the trimap's split is returned.

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.matting import closed_form_matting
    >>> image = np.zeros((9, 12, 3)); image[:, 6:] = 1.0
    >>> trimap = np.full((9, 12), 128, np.uint8)
    >>> trimap[:, :2], trimap[:, -2:] = 0, 255
    >>> alpha = closed_form_matting(image, trimap)
    >>> bool(np.abs(alpha - (image[..., 0] > 0.5)).max() < 1e-6)
    True
    """
    shape = image_pixels(image)
    if shape is not None:
        # The image and trimap as float64 and the known/unknown masks, before any solve.
        check_memory(64.0 * shape[0] * shape[1],
                     f"closed_form_matting of a {shape[0]}×{shape[1]} image",
                     "matte a smaller image (unmix.image.resize_image) or a crop around the object")
    image = as_float_image(image, name="image")
    backend = get_backend(device)
    rtol = positive("rtol", rtol)
    maxiter = integer("maxiter", maxiter, 1)
    keep_trimap_values = flag("keep_trimap_values", keep_trimap_values)
    shape = image.shape[:2]
    fg_threshold, bg_threshold = _check_thresholds(fg_threshold, bg_threshold)
    values = _trimap_values(trimap)
    foreground, _, unknown = _split_values(values, fg_threshold, bg_threshold, shape)
    alpha = foreground.astype(np.float64)
    n_unknown = int(np.count_nonzero(unknown))
    info = MattingInfo(n_unknown=n_unknown)
    # bench_matting.py's peaks: +0.38, +0.94 and +1.44 GB for 151 k, 384 k and 600 k
    # unknown pixels (Laplacian rows, the Cholesky factor, PCG vectors).
    check_memory(2600.0 * n_unknown,
                 f"closed_form_matting with {n_unknown} unknown pixels",
                 "narrow the trimap's unknown band, or matte a smaller image or a crop")
    if n_unknown:
        start = time.perf_counter()
        rows = matting_laplacian(image, eps, radius, rows=unknown)
        unknown_of = np.full(unknown.size, -1, dtype=np.int64)
        unknown_of[unknown.ravel()] = np.arange(n_unknown)
        indptr, indices, data, rhs = _split_known(rows.indptr, rows.indices, rows.data,
                                                  unknown_of, alpha.ravel())
        del rows
        A = scipy.sparse.csr_matrix((data, indices, indptr), shape=(n_unknown, n_unknown))
        info.timings["laplacian"] = time.perf_counter() - start

        start = time.perf_counter()
        # L couples pixels up to 2r apart: separators of that width split it. cuDSS
        # orders the matrix itself.
        tree = None if backend.is_gpu else grid_nested_dissection(
            shape, radius=2 * radius, pixels=unknown)
        info.timings["ordering"] = time.perf_counter() - start
        start = time.perf_counter()
        precondition = _factor(A, tree, info, backend)
        backend.synchronize()
        info.timings["factorization"] = time.perf_counter() - start

        start = time.perf_counter()
        # One BLAS thread: PCG's vector products are too small to share, and
        # on a busy machine OpenBLAS's spinning threads made them 10× slower.
        with single_threaded_blas():
            result = pcg(backend.csr(A), backend.asarray(rhs), rtol=rtol, maxiter=maxiter,
                         M=precondition)
        info.timings["solve"] = time.perf_counter() - start
        info.iterations, info.residual = result.iterations, result.residual
        info.converged = result.converged
        alpha.ravel()[unknown.ravel()] = np.clip(to_host(result.x), 0.0, 1.0)
        log.info("closed-form matting: %d unknown pixels, %d PCG iteration(s), residual %.2g, "
                 "factor %d entries; %s", n_unknown, info.iterations, info.residual,
                 info.factor_nnz,
                 ", ".join(f"{k} {v:.3f} s" for k, v in info.timings.items()))
    if keep_trimap_values:
        known = ~unknown
        alpha[known] = values[known]
    return (alpha, info) if return_info else alpha

