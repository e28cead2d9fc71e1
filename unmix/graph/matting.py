"""Levin's closed-form matting affinity and Laplacian.

The matting Laplacian of Levin, Lischinski and Weiss (TPAMI 2008) is

.. math::

    L_{ij} = \\sum_{k : i, j \\in \\omega_k} \\left( \\delta_{ij} - \\frac{1}{|\\omega|}
             \\left(1 + (I_i - \\mu_k)^T \\left(\\Sigma_k + \\frac{\\varepsilon}{|\\omega|}
             I_3\\right)^{-1} (I_j - \\mu_k)\\right) \\right),

summed over the (2r+1)×(2r+1) windows :math:`\\omega_k` that lie fully inside
the image, with :math:`\\mu_k` the window's mean colour and :math:`\\Sigma_k`
its biased (1/|ω|) covariance (``spec/matting.md`` §1.1, ``spec/sss.md`` §5).
Semantic Soft Segmentation uses the same quantity as an affinity
:math:`W_L` (the bracketed term without :math:`\\delta_{ij}`), with
:math:`L_M = \\operatorname{diag}(W_L \\mathbf{1}) - W_L`.

Implementation
--------------
The CSR matrix is written directly, without COO triplets, sorting or
duplicate summation (the conversion where peers spend their time). Two
pixels share a window exactly when their Chebyshev distance is at most 2r
(every such pair has a common *interior* window once the image has 2r+1 rows
and columns), so row ``p = y·W + x`` holds the clipped (4r+1)×(4r+1) box of
pixels around ``(y, x)`` in raster order: its length and every column
position are arithmetic, and each window adds its |ω|×|ω| block in place.

- Per window, ``G_ij = 1/|ω| + z_i·z_j`` with whitened colours
  ``z_j = C⁻¹(I_j − μ_k)``, ``C Cᵀ = M_k + ε I₃`` and ``M_k = |ω| Σ_k`` the
  scatter matrix of the centred colours (see ``_add_window``).
- Parallel and race-free: window rows are cut into bands of fixed height; all
  bands run in parallel except their first 2r window rows, which run in a
  second parallel phase (windows of different bands then touch disjoint
  pixel rows). The result does not depend on the number of threads.
- Exactly symmetric: each G_ij is computed once for both (i, j) and (j, i),
  and every entry receives its windows in the same order as its transpose.
- For the Laplacian the diagonal is Σ_{j≠i} G_ij per window, so that
  L·1 = 0 up to rounding (~1e-15).
- ``rows=`` stores only the rows of selected pixels and skips every window
  that contains none of them (those windows add nothing to these rows), so
  the reduced system of closed-form matting costs time and memory in
  proportion to the unknown region; the rows are bitwise those of the full
  matrix (same windows, same order).
- The kernels are specialised per radius (the window side is a compile-time
  constant, ~1.4× faster) and compiled lazily with ``cache=True``.

Accuracy
--------
With the default ε = 1e-7 the regularisation ε/|ω| ≈ 1.1e-8 is tiny, and in
nearly flat windows Σ_k + ε/|ω| I₃ has condition numbers up to ~1e8. A
closed-form adjugate/determinant inverse, or a covariance computed as
E[I Iᵀ] − μμᵀ, loses many digits there: pymatting's ``cf_laplacian`` is off by
up to ~1e-4 on clipped (black or white) regions. Here the covariance comes from
centred colours (no cancellation) and the inverse is applied through a
Cholesky factor (backward stable), never formed: against an extended-precision
evaluation the error is ~1e-10 on the same windows, ~1e-8 is the float64
bound (rounding of Σ_k relative to ε/|ω|).
"""

import functools

import numpy as np
import scipy.sparse
from numba import njit, prange

from .._checks import integer, positive
from .._numba import threads_for
from ..image import as_float_image

__all__ = ["matting_affinity", "matting_laplacian"]

# --------------------------------------------------------------------------- #
# Numba kernels (compiled lazily on first call; cached on disk)               #
# --------------------------------------------------------------------------- #


@njit(cache=True, inline="always")
def _row_geometry(y, x, h, w, r2):
    """First offsets (dy0, dx0) and width of row (y, x)'s clipped column box."""
    dy0 = max(-r2, -y)
    dx0 = max(-r2, -x)
    ncols = min(r2, w - 1 - x) - dx0 + 1
    return dy0, dx0, ncols


@njit(cache=True, inline="always")
def _fill_index_rows(y0, y1, w, h, big_r, row_of, indptr, indices):
    """Column indices of the stored rows among pixel rows y0 .. y1-1: the row
    of pixel p = (y, x) lists the pixels within Chebyshev distance
    2r = ``big_r``, clipped, in order."""
    for y in range(y0, y1):
        dy1 = min(big_r, h - 1 - y)
        for x in range(w):
            p = y * w + x
            if row_of[p] < 0:
                continue
            dy0, dx0, ncols = _row_geometry(y, x, h, w, big_r)
            pos = indptr[row_of[p]]
            for dy in range(dy0, dy1 + 1):
                q0 = p + dy * w + dx0
                for c in range(ncols):
                    indices[pos] = q0 + c
                    pos += 1


@njit(cache=True, inline="always")
def _add_window(img, ty, tx, n, eps, row_of, indptr, data, sign, z0, z1, z2, g, base, ncols):
    """Add the block of the window with top-left pixel (ty, tx) to ``data``.

    Only the rows of pixels p with ``row_of[p] >= 0`` are stored (row
    ``row_of[p]`` of the CSR arrays); the others are skipped.

    With centred colours d_j = I_j − μ_k and the scatter matrix
    M_k = Σ_j d_j d_jᵀ = |ω| Σ_k (Levin et al. 2008, Eq. 12; spec §5),

        (1 + d_iᵀ (Σ_k + ε/|ω| I₃)⁻¹ d_j) / |ω| = 1/|ω| + z_i·z_j,
        z_j = C⁻¹ d_j,  C Cᵀ = M_k + ε I₃  (Cholesky),

    so neither an inverse nor ε/|ω| is formed. ``sign`` = +1 adds the block
    G to W_L; ``sign`` = −1 subtracts it from L, whose diagonal then receives
    Σ_{j≠i} G_ij instead (L·1 = 0 up to rounding). G_ij is computed once
    and stored for (i, j) and (j, i), and every entry receives its windows in
    the same order as its transpose, so the matrix is bitwise symmetric.
    Returns 1 if a Cholesky pivot was not positive (ε too small for
    float64), else 0.
    """
    w = img.shape[1]
    nw = n * n
    big_r = n - 1  # rows span the pixels within Chebyshev distance 2r
    inv_nw = 1.0 / nw
    # Window mean μ_k.
    m0 = 0.0
    m1 = 0.0
    m2 = 0.0
    for a in range(n):
        for b in range(n):
            m0 += img[ty + a, tx + b, 0]
            m1 += img[ty + a, tx + b, 1]
            m2 += img[ty + a, tx + b, 2]
    m0 *= inv_nw
    m1 *= inv_nw
    m2 *= inv_nw
    # Centred colours d_j (stored in z) and M_k + εI. The two-pass (centred)
    # sum avoids the E[IIᵀ] − μμᵀ cancellation, whose ~1e-16 error is already
    # 1e-8 relative to ε/|ω| ≈ 1.1e-8 in flat windows.
    s00 = eps
    s11 = eps
    s22 = eps
    s01 = 0.0
    s02 = 0.0
    s12 = 0.0
    for a in range(n):
        for b in range(n):
            j = a * n + b
            e0 = img[ty + a, tx + b, 0] - m0
            e1 = img[ty + a, tx + b, 1] - m1
            e2 = img[ty + a, tx + b, 2] - m2
            z0[j] = e0
            z1[j] = e1
            z2[j] = e2
            s00 += e0 * e0
            s01 += e0 * e1
            s02 += e0 * e2
            s11 += e1 * e1
            s12 += e1 * e2
            s22 += e2 * e2
    # Cholesky C Cᵀ = M + εI: backward stable on this SPD matrix, whose
    # condition number reaches ~1e8 in flat windows, where an adjugate /
    # determinant inverse loses up to ~1e-4 in L.
    bad = 0
    c00 = np.sqrt(s00)
    c10 = s01 / c00
    c20 = s02 / c00
    p11 = s11 - c10 * c10
    if not p11 > 0.0:
        bad = 1
        p11 = eps
    c11 = np.sqrt(p11)
    c21 = (s12 - c20 * c10) / c11
    p22 = s22 - c20 * c20 - c21 * c21
    if not p22 > 0.0:
        bad = 1
        p22 = eps
    c22 = np.sqrt(p22)
    i00 = 1.0 / c00
    i11 = 1.0 / c11
    i22 = 1.0 / c22
    # Whitened colours z_j = C⁻¹ d_j (forward substitution, in place).
    for j in range(nw):
        y0 = z0[j] * i00
        y1 = (z1[j] - c10 * y0) * i11
        z2[j] = (z2[j] - c20 * y0 - c21 * y1) * i22
        z0[j] = y0
        z1[j] = y1
    # Where column (ty, tx) sits in the row of each window pixel: rows span
    # the pixels within Chebyshev distance 2r, clipped at the image border.
    for a in range(n):
        iy = ty + a
        dy0 = max(-big_r, -iy)
        for b in range(n):
            ix = tx + b
            dx0 = max(-big_r, -ix)
            nc = min(big_r, w - 1 - ix) - dx0 + 1
            ncols[a * n + b] = nc
            row = row_of[iy * w + ix]
            base[a * n + b] = indptr[row] + (-a - dy0) * nc + (-b - dx0) if row >= 0 else -1
    # G = 1/|ω| + Z Zᵀ: the upper triangle, mirrored (half the dot products;
    # G is bitwise symmetric by construction).
    for i in range(nw):
        zi0 = z0[i]
        zi1 = z1[i]
        zi2 = z2[i]
        for j in range(i, nw):
            gv = inv_nw + (zi0 * z0[j] + zi1 * z1[j] + zi2 * z2[j])
            g[i * nw + j] = gv
            g[j * nw + i] = gv
    # Row i of G goes to pixel i's CSR row as n runs of n consecutive entries.
    for i in range(nw):
        bi = base[i]
        if bi < 0:  # a pixel whose row is not stored
            continue
        gi = g[i * nw : (i + 1) * nw]
        if sign < 0.0:
            # Laplacian diagonal: −(−Σ_{j≠i} G_ij).
            off = 0.0
            for j in range(nw):
                off += gi[j]
            gi[i] = -(off - gi[i])
        ci = ncols[i]
        for a in range(n):
            pos = bi + a * ci
            for b in range(n):
                data[pos + b] += sign * gi[a * n + b]
    return bad


@functools.lru_cache(maxsize=None)
def _window_kernels(radius):
    """The window-accumulation kernel specialised for one radius.

    The window side n = 2r+1 is a closure constant and ``_add_window`` is
    inlined, so Numba compiles loops with constant trip counts (unrolled,
    vectorised): ~1.4× faster than with r as an argument. The closure holds
    only this integer, so Numba's disk cache keys each radius separately;
    nothing is compiled before the first call.
    """
    n = 2 * radius + 1

    @njit(cache=True, parallel=True)
    def accumulate_windows(img, eps, band, row_of, active, indptr, indices, data, laplacian):
        """Write ``indices`` and add the active interior windows' blocks to ``data``.

        ``data`` must be zeroed. Rows are stored for the pixels p with
        ``row_of[p] >= 0``; the window with top-left pixel (ty, tx) is summed
        where ``active[ty, tx]`` (it contains such a pixel). The window rows
        (top rows ty = 0 .. H−2r−1) are cut into bands of ``band`` ≥ 4r rows.
        Phase 0 runs, in parallel over bands, every window row of a band
        except its first 2r (and writes the column indices of the band's
        pixel rows); phase 1 then runs those
        first 2r rows. Windows of different bands in the same phase touch
        disjoint pixel rows (a window touches 2r+1 rows), so no two threads
        write the same entry, and within a band the window rows go in order,
        so the CSR rows they share are still in cache. The band size does not
        depend on the number of threads, so neither does the result.
        Returns the number of windows with a non-positive Cholesky pivot.
        """
        nw = n * n
        big_r = n - 1
        h, w = img.shape[0], img.shape[1]
        hk = h - big_r
        wk = w - big_r
        n_bands = (hk + band - 1) // band
        sign = -1.0 if laplacian else 1.0
        n_bad = 0
        for phase in range(2):
            for b_ in prange(n_bands):
                b = np.int64(b_)  # a prange index may be unsigned
                z0 = np.empty(nw)
                z1 = np.empty(nw)
                z2 = np.empty(nw)
                g = np.empty(nw * nw)  # the window block G, row-major
                base = np.empty(nw, dtype=np.int64)
                ncols = np.empty(nw, dtype=np.int64)
                start = b * band
                stop = min(start + band, hk)
                if phase == 0:
                    t0 = min(start + big_r, stop)
                    t1 = stop
                    # This band's pixel rows; the last band also takes the
                    # 2r bottom rows, which start no window.
                    y1 = h if b == n_bands - 1 else start + band
                    _fill_index_rows(start, y1, w, h, big_r, row_of, indptr, indices)
                else:
                    t0 = start
                    t1 = min(start + big_r, stop)
                for ty in range(t0, t1):
                    for tx in range(wk):
                        if active[ty, tx]:
                            n_bad += _add_window(
                                img, ty, tx, n, eps, row_of, indptr, data, sign,
                                z0, z1, z2, g, base, ncols,
                            )
        return n_bad

    return accumulate_windows


# --------------------------------------------------------------------------- #
# Public API                                                                  #
# --------------------------------------------------------------------------- #


def _check_params(eps, radius):
    return positive("eps", eps), integer("radius", radius, 1)


def _row_selection(rows, shape, side):
    """``row_of`` (row of each pixel's CSR row, −1 if not stored) and the mask
    of the windows (by top-left pixel) that contain a stored pixel."""
    h, w = shape
    if rows is None:
        return np.arange(h * w, dtype=np.int64), np.ones((h - side + 1, w - side + 1), bool)
    mask = np.asarray(rows)
    if mask.dtype != bool or mask.shape != (h, w):
        raise ValueError(
            f"rows must be a boolean mask of shape {(h, w)} (the image's), "
            f"got dtype {mask.dtype} and shape {mask.shape}"
        )
    row_of = np.full(h * w, -1, dtype=np.int64)
    flat = mask.ravel()
    row_of[flat] = np.arange(np.count_nonzero(flat))
    # Windows containing a stored pixel: a side×side box sum of the mask > 0.
    box = np.zeros((h + 1, w + 1), dtype=np.int64)
    np.cumsum(np.cumsum(mask, axis=0), axis=1, out=box[1:, 1:])
    active = (box[side:, side:] - box[:-side, side:] - box[side:, :-side] + box[:-side, :-side]) > 0
    return row_of, active


def _matting_csr(image, eps, radius, laplacian, rows=None):
    eps, radius = _check_params(eps, radius)
    img = as_float_image(image, name="image", min_side=1)
    if not img.flags.writeable:
        # Numba compiles read-only arrays as a separate type: one copy here
        # (cheap next to the matrix) spares a second multi-second compilation.
        img = img.copy()
    h, w = img.shape[:2]
    side = 2 * radius + 1
    if h < side or w < side:
        raise ValueError(
            f"image must have at least 2*radius+1 = {side} rows and columns for "
            f"radius={radius} (one full window), got {h}×{w}"
        )
    n = h * w
    n_win = side * side
    row_of, active = _row_selection(rows, (h, w), side)

    # Row p = (y, x) holds the pixels within Chebyshev distance 2r, clipped.
    r2 = 2 * radius
    ys = np.arange(h)
    xs = np.arange(w)
    rows_y = np.minimum(ys + r2, h - 1) - np.maximum(ys - r2, 0) + 1
    cols_x = np.minimum(xs + r2, w - 1) - np.maximum(xs - r2, 0) + 1
    counts = np.outer(rows_y, cols_x).ravel()
    if rows is not None:
        counts = counts[row_of >= 0]
    n_rows = counts.shape[0]
    nnz = int(counts.sum())
    # int32 indices whenever they fit, as SciPy would choose (no later copy).
    idx_dtype = np.int32 if max(nnz, n) < np.iinfo(np.int32).max else np.int64
    indptr = np.empty(n_rows + 1, dtype=idx_dtype)
    indptr[0] = 0
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(nnz, dtype=idx_dtype)
    data = np.zeros(nnz, dtype=np.float64)

    # Bands of window rows for the parallel accumulation: at least 4r rows
    # (race-free phases) and a fixed size (results independent of threads).
    band = max(32, 4 * radius)
    kernel = _window_kernels(radius)
    with threads_for(n_rows):
        n_bad = kernel(img, eps, band, row_of, active, indptr, indices, data, laplacian)
    if n_bad:
        raise ValueError(
            f"eps={eps!r} is too small: the regularised window covariance "
            f"Σ_k + (eps/{n_win})·I is numerically singular in {n_bad} window(s); "
            "use a larger eps (the default is 1e-7)"
        )

    out = scipy.sparse.csr_matrix((data, indices, indptr), shape=(n_rows, n), copy=False)
    # Built in canonical form: sorted, duplicate-free column indices.
    out.has_sorted_indices = True
    out.has_canonical_format = True
    return out


def matting_laplacian(image, eps=1e-7, radius=1, *, rows=None):
    """Levin's closed-form matting Laplacian.

    Parameters
    ----------
    image : array_like, shape (H, W, 3) or (H, W)
        The image: floats in [0, 1], ``uint8`` or ``uint16`` (see
        :func:`unmix.image.as_float_image`); grey images are repeated into
        three channels. Computations are in float64.
    eps : float, optional
        The regulariser ε of the local affine model (Levin et al. 2008);
        ``ε/|ω|`` is added to every window covariance, as in Levin's and
        pymatting's code. Default 1e-7 (the SSS released code and pymatting).
    radius : int, optional
        The window radius r: windows are (2r+1)×(2r+1), ``|ω| = (2r+1)²``.
        Only windows lying fully inside the image are used.
    rows : ndarray of bool, shape (H, W), optional
        Compute only the rows of these pixels (e.g. the unknown pixels of a
        trimap, for the reduced system of closed-form matting), from only
        the windows that contain one of them: the rows are exact, and time
        and memory are proportional to their number (Levin's known-window
        skipping, ``spec/matting.md`` §1.3). All rows by default.

    Returns
    -------
    L : scipy.sparse.csr_matrix, shape (H·W, H·W), float64
        Pixels are indexed row-major, ``p = y·W + x``. Row p stores every
        pixel within Chebyshev distance 2r of p (clipped at the borders), in
        increasing column order without duplicates: (4r+1)² entries for an
        interior pixel. L is exactly symmetric, positive semi-definite, and
        ``L @ 1 = 0`` up to rounding. With ``rows``, shape
        (rows.sum(), H·W): the rows of the selected pixels, in row-major
        order, equal to ``L[rows.ravel()]``.

    Raises
    ------
    TypeError
        If ``eps`` is not a real number, ``radius`` not an integer, or the
        image dtype is not accepted.
    ValueError
        If ``eps`` is not finite and positive, ``radius < 1``, the image is
        not an (H, W[, 3]) image in range, or it has fewer than 2r+1 rows or
        columns, or ``rows`` is not a boolean mask of the image's shape.

    See Also
    --------
    matting_affinity : The affinity W_L with ``L = diag(W_L·1) − W_L``.
    unmix.matting.closed_form_matting : The reduced system built on ``rows``.

    Notes
    -----
    .. math::

        L_{ij} = \\sum_{k : i, j \\in \\omega_k} \\left( \\delta_{ij} -
        \\frac{1}{|\\omega|}\\left(1 + (I_i - \\mu_k)^T \\left(\\Sigma_k +
        \\frac{\\varepsilon}{|\\omega|} I_3\\right)^{-1} (I_j - \\mu_k)\\right)\\right)

    with :math:`\\mu_k`, :math:`\\Sigma_k` the mean and biased covariance of
    the colours in window :math:`\\omega_k` (Levin, Lischinski and Weiss, "A
    Closed-Form Solution to Natural Image Matting", TPAMI 30(2), 2008, Eq. 12).
    Each window adds :math:`\\sum_{j \\ne i}` of its off-diagonal terms to
    :math:`L_{ii}`, which equals :math:`1 - (1 + \\dots)/|\\omega|` in exact
    arithmetic (the centred colours of a window sum to zero) and makes the
    rows sum to zero up to rounding.

    The first call compiles the Numba kernels (cached on disk afterwards).

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.graph.matting import matting_laplacian
    >>> rng = np.random.default_rng(0)
    >>> L = matting_laplacian(rng.random((8, 10, 3)))
    >>> L.shape, L.nnz
    ((80, 80), 1496)
    >>> bool(abs(L @ np.ones(80)).max() < 1e-10)
    True
    """
    return _matting_csr(image, eps, radius, laplacian=True, rows=rows)


def matting_affinity(image, eps=1e-7, radius=1):
    """Levin's matting affinity W_L, as used by Semantic Soft Segmentation.

    Parameters
    ----------
    image : array_like, shape (H, W, 3) or (H, W)
        The image: floats in [0, 1], ``uint8`` or ``uint16`` (see
        :func:`unmix.image.as_float_image`).
    eps : float, optional
        The regulariser ε; ``ε/|ω|`` is added to every window covariance.
        Default 1e-7 (``spec/sss.md`` §5).
    radius : int, optional
        The window radius r (``|ω| = (2r+1)²``); default 1.

    Returns
    -------
    W : scipy.sparse.csr_matrix, shape (H·W, H·W), float64
        Same sparsity pattern as :func:`matting_laplacian`, diagonal included:

        .. math::

            W_{ij} = \\frac{1}{|\\omega|} \\sum_{k : i, j \\in \\omega_k}
            \\left(1 + (I_i - \\mu_k)^T \\left(\\Sigma_k +
            \\frac{\\varepsilon}{|\\omega|} I_3\\right)^{-1}(I_j - \\mu_k)\\right).

        Exactly symmetric. Row i sums to the number of windows containing
        pixel i, so ``diag(W @ 1) - W`` is the matting Laplacian. Entries
        can be negative.

    Raises
    ------
    TypeError, ValueError
        As :func:`matting_laplacian`.

    See Also
    --------
    matting_laplacian

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.graph.matting import matting_affinity
    >>> W = matting_affinity(np.random.default_rng(0).random((5, 5, 3)))
    >>> np.round(W.sum(axis=1).A.ravel().reshape(5, 5), 9)
    array([[1., 2., 3., 2., 1.],
           [2., 4., 6., 4., 2.],
           [3., 6., 9., 6., 3.],
           [2., 4., 6., 4., 2.],
           [1., 2., 3., 2., 1.]])
    """
    return _matting_csr(image, eps, radius, laplacian=False)
