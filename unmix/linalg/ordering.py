"""Fill-reducing orderings of pixel-grid matrices: geometric nested dissection.

Matrices built on an image (matting Laplacians, the SSS Laplacian of spec ``sss.md`` §8)
couple each pixel with the pixels of a small stencil around it (a 5×5 window for the
matting Laplacian with window radius 1) plus, sometimes, a few *long-range* edges (the
superpixel centroid pixels that carry W_S and W_C).  For such a matrix the geometry gives
an excellent elimination order for free: cut the grid by a strip of pixels as wide as the
stencil radius (no edge crosses it), order the two halves recursively and the strip last.
The recursion is a *separator tree*; :mod:`unmix.linalg.multifrontal` factors a matrix
front by front on it.  The long-range pixels are put in the root, so they form a single
dense trailing block instead of spoiling every separator.

Pixels index the matrix row-major (p = y·W + x, DESIGN.md §3).  With ``pixels`` (a mask of
the grid), the matrix indexes only the selected pixels, again in row-major order, as in
the reduced system of closed-form matting on the unknown pixels.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["SeparatorTree", "grid_nested_dissection", "stencil_radius"]


@dataclass(frozen=True)
class SeparatorTree:
    """An elimination order with its separator (assembly) tree.

    Nodes are numbered in post-order (every child before its parent), the root last.
    Node ``t`` owns the contiguous slice ``perm[node_ptr[t]:node_ptr[t + 1]]`` of the
    elimination order, and the nodes of a subtree own a contiguous slice too.  The tree is
    a nested dissection: a matrix entry (i, j) between variables of nodes s and t is
    allowed only if s is t, an ancestor or a descendant of t.

    Attributes
    ----------
    perm : ndarray of int64, shape (n,)
        ``perm[k]`` is the original index of the k-th eliminated variable.
    node_ptr : ndarray of int64, shape (n_nodes + 1,)
        Node ``t`` owns positions ``node_ptr[t]:node_ptr[t + 1]`` of ``perm``.
    parent : ndarray of int64, shape (n_nodes,)
        Parent node, -1 for the root (the last node).
    radius : int or None
        The stencil radius the separators were built for (None if not a grid ordering).
    long_range : ndarray of int64
        Original indices of the variables put in the root because they have long edges.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from unmix.linalg import factorize, grid_nested_dissection
    >>> T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(16, 16))
    >>> A = (sp.kron(sp.eye(16), T) + sp.kron(T, sp.eye(16))).tocsr()   # Poisson, 16×16 grid
    >>> tree = grid_nested_dissection((16, 16), A, leaf_size=16)
    >>> tree.n, tree.n_nodes, tree.root
    (256, 31, 30)
    >>> tree.variables(tree.root)          # the first separator: grid column 7
    array([  7,  23,  39,  55,  71,  87, 103, 119, 135, 151, 167, 183, 199, 215, 231, 247])
    >>> int(tree.parent[tree.root])
    -1
    """

    perm: np.ndarray
    node_ptr: np.ndarray
    parent: np.ndarray
    radius: int | None = None
    long_range: np.ndarray | None = None

    @property
    def n(self):
        """Number of variables."""
        return int(self.perm.shape[0])

    @property
    def n_nodes(self):
        """Number of tree nodes."""
        return int(self.parent.shape[0])

    @property
    def root(self):
        """Index of the root node (always the last)."""
        return self.n_nodes - 1

    def variables(self, t):
        """Original indices of the variables of node ``t``.

        Examples
        --------
        >>> import numpy as np
        >>> import scipy.sparse as sp
        >>> from unmix.linalg import factorize, grid_nested_dissection
        >>> T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(16, 16))
        >>> A = (sp.kron(sp.eye(16), T) + sp.kron(T, sp.eye(16))).tocsr()   # Poisson, 16×16 grid
        >>> tree = grid_nested_dissection((16, 16), A, leaf_size=16)
        >>> tree.variables(tree.root)[:4]
        array([ 7, 23, 39, 55])
        """
        return self.perm[self.node_ptr[t]:self.node_ptr[t + 1]]

    def inverse_perm(self):
        """``iperm`` with ``iperm[perm[k]] = k``.

        Examples
        --------
        >>> import numpy as np
        >>> import scipy.sparse as sp
        >>> from unmix.linalg import factorize, grid_nested_dissection
        >>> T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(16, 16))
        >>> A = (sp.kron(sp.eye(16), T) + sp.kron(T, sp.eye(16))).tocsr()   # Poisson, 16×16 grid
        >>> tree = grid_nested_dissection((16, 16), A, leaf_size=16)
        >>> iperm = tree.inverse_perm()
        >>> bool(np.array_equal(iperm[tree.perm], np.arange(tree.n)))
        True
        """
        inv = np.empty_like(self.perm)
        inv[self.perm] = np.arange(self.perm.shape[0], dtype=self.perm.dtype)
        return inv

    def owner(self):
        """``owner[k]``: the node owning elimination position k.

        Examples
        --------
        >>> import numpy as np
        >>> import scipy.sparse as sp
        >>> from unmix.linalg import factorize, grid_nested_dissection
        >>> T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(16, 16))
        >>> A = (sp.kron(sp.eye(16), T) + sp.kron(T, sp.eye(16))).tocsr()   # Poisson, 16×16 grid
        >>> tree = grid_nested_dissection((16, 16), A, leaf_size=16)
        >>> owner = tree.owner()
        >>> owner.shape, int(owner[-1]) == tree.root
        ((256,), True)
        """
        sizes = np.diff(self.node_ptr)
        return np.repeat(np.arange(self.n_nodes, dtype=np.int64), sizes)

    def first_descendant(self):
        """Smallest node number in each node's subtree (post-order ⇒ a contiguous range).

        Examples
        --------
        >>> import numpy as np
        >>> import scipy.sparse as sp
        >>> from unmix.linalg import factorize, grid_nested_dissection
        >>> T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(16, 16))
        >>> A = (sp.kron(sp.eye(16), T) + sp.kron(T, sp.eye(16))).tocsr()   # Poisson, 16×16 grid
        >>> tree = grid_nested_dissection((16, 16), A, leaf_size=16)
        >>> first = tree.first_descendant()
        >>> int(first[tree.root])              # the root's subtree is the whole tree
        0
        """
        first = np.arange(self.n_nodes, dtype=np.int64)
        for t in range(self.n_nodes - 1):  # children precede parents in post-order
            p = self.parent[t]
            if first[t] < first[p]:
                first[p] = first[t]
        return first


# ------------------------------------------------------------------------------ radius
def _grid_coordinates(shape, pixels):
    H, W = shape
    if pixels is None:
        idx = np.arange(H * W, dtype=np.int64)
    else:
        idx = np.flatnonzero(pixels.ravel()).astype(np.int64)
    return np.divmod(idx, W)


def stencil_radius(A, shape, *, pixels=None, max_radius=8, max_long_range=None):
    """Detect the stencil radius of a pixel-grid matrix and its long-range variables.

    The radius is the smallest r such that at most ``max_long_range`` variables have an
    edge reaching farther than r pixels (Chebyshev distance); those variables are the
    long-range ones (e.g. the superpixel centroid pixels of the SSS Laplacian).

    Parameters
    ----------
    A : sparse matrix, shape (n, n)
        Symmetric sparsity pattern on the grid pixels.
    shape : (H, W)
        The pixel grid.
    pixels : ndarray of bool, shape (H, W), optional
        The grid pixels that are variables of A (row-major); all pixels if omitted.
    max_radius : int, default 8
        Largest radius tried.
    max_long_range : int, optional
        Largest accepted number of long-range variables; default
        ``max(64, min(n // 4, 4000))``: they make one dense root front, so their number
        bounds its cost (4000 ⇒ a few seconds of LU), while too small a budget would
        widen the radius and leave long edges (the indefinite ones in the SSS Laplacian)
        inside the separators.

    Returns
    -------
    radius : int or None
        None if no radius up to ``max_radius`` leaves few enough long-range variables.
    long_range : ndarray of bool, shape (n,) or None

    Examples
    --------
    A 5-point stencil has radius 1; one long edge makes its two ends long-range:

    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from unmix.linalg import factorize, grid_nested_dissection
    >>> T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(16, 16))
    >>> A = (sp.kron(sp.eye(16), T) + sp.kron(T, sp.eye(16))).tocsr()   # Poisson, 16×16 grid
    >>> tree = grid_nested_dissection((16, 16), A, leaf_size=16)
    >>> from unmix.linalg import stencil_radius
    >>> radius, long_range = stencil_radius(A, (16, 16))
    >>> radius, int(long_range.sum())
    (1, 0)
    >>> W = A.tolil(); W[0, 255] = W[255, 0] = -0.5
    >>> radius, long_range = stencil_radius(W.tocsr(), (16, 16))
    >>> radius, np.flatnonzero(long_range)
    (1, array([  0, 255]))
    """
    import scipy.sparse as sp

    shape, pixels = _check_grid(shape, pixels, A.shape[0])
    C = sp.coo_matrix(A)
    yy, xx = _grid_coordinates(shape, pixels)
    off = np.maximum(np.abs(yy[C.row] - yy[C.col]), np.abs(xx[C.row] - xx[C.col]))
    n = A.shape[0]
    if max_long_range is None:
        max_long_range = max(64, min(n // 4, 4000))
    for r in range(1, max_radius + 1):
        far = off > r
        mark = np.zeros(n, dtype=bool)
        mark[C.row[far]] = True
        mark[C.col[far]] = True
        if mark.sum() <= max_long_range:
            return r, mark
    return None, None


def _check_grid(shape, pixels, n):
    try:
        H, W = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be a pair (H, W) of integers, got {shape!r}") from None
    if H < 1 or W < 1:
        raise ValueError(f"shape must be (H, W) with H, W >= 1, got {shape!r}")
    if pixels is not None:
        pixels = np.asarray(pixels)
        if pixels.dtype != bool or pixels.shape != (H, W):
            raise ValueError(
                f"pixels must be a boolean mask of shape {(H, W)}, got dtype {pixels.dtype} "
                f"and shape {pixels.shape}")
        count = int(pixels.sum())
    else:
        count = H * W
    if n is not None and count != n:
        what = "pixels.sum()" if pixels is not None else "H·W"
        raise ValueError(f"the matrix has {n} rows but {what} = {count} for shape {(H, W)}")
    return (H, W), pixels


# --------------------------------------------------------------------- nested dissection
def grid_nested_dissection(shape, A=None, *, radius=None, long_range=None, pixels=None,
                           leaf_size=64):
    """Nested-dissection order and separator tree of a pixel-grid matrix.

    Each rectangle of the grid is split across its longer side by a strip ``radius``
    pixels wide (so the halves share no matrix entry), halves first, strip last, until
    rectangles have at most ``leaf_size`` pixels.  The top strip and the long-range
    variables form the root node.

    Parameters
    ----------
    shape : (H, W)
        The pixel grid.
    A : sparse matrix, shape (n, n), optional
        The matrix; used to detect ``radius`` and ``long_range`` when they are not given
        (see :func:`stencil_radius`).
    radius : int, optional
        Stencil radius (entries (i, j) only between pixels at Chebyshev distance
        ≤ radius, apart from the long-range variables). Required without ``A``.
    long_range : ndarray of bool, shape (n,), optional
        Variables with longer edges, ordered last in the root. Detected from ``A`` when
        ``radius`` is not given; none otherwise.
    pixels : ndarray of bool, shape (H, W), optional
        The grid pixels that are variables (row-major); all pixels if omitted.
    leaf_size : int, default 64
        Largest leaf rectangle (in grid pixels).

    Returns
    -------
    SeparatorTree

    Raises
    ------
    ValueError
        If the sizes disagree, or if no stencil radius ≤ 8 fits ``A``.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from unmix.linalg import factorize, grid_nested_dissection
    >>> T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(16, 16))
    >>> A = (sp.kron(sp.eye(16), T) + sp.kron(T, sp.eye(16))).tocsr()   # Poisson, 16×16 grid
    >>> tree = grid_nested_dissection((16, 16), A, leaf_size=16)
    >>> tree.n, tree.radius
    (256, 1)
    >>> bool(np.array_equal(np.sort(tree.perm), np.arange(256)))   # a permutation
    True
    """
    n = None if A is None else A.shape[0]
    shape, pixels = _check_grid(shape, pixels, n)
    H, W = shape
    n = H * W if pixels is None else int(pixels.sum())
    if radius is None:
        if A is None:
            raise ValueError("grid_nested_dissection needs A or radius; got neither")
        radius, detected = stencil_radius(A, shape, pixels=pixels)
        if radius is None:
            raise ValueError(
                "A is not a grid-stencil matrix: no radius <= 8 leaves few long-range "
                "variables; use a general ordering instead")
        if long_range is None:
            long_range = detected
    if isinstance(radius, bool) or not isinstance(radius, numbers.Integral) or radius < 1:
        raise ValueError(f"radius must be a positive integer, got {radius!r}")
    if isinstance(leaf_size, bool) or not isinstance(leaf_size, numbers.Integral) \
            or leaf_size < 1:
        raise ValueError(f"leaf_size must be a positive integer, got {leaf_size!r}")
    if long_range is None:
        long_range = np.zeros(n, dtype=bool)
    long_range = np.asarray(long_range)
    if long_range.dtype != bool or long_range.shape != (n,):
        raise ValueError(f"long_range must be a boolean array of shape ({n},), got dtype "
                         f"{long_range.dtype} and shape {long_range.shape}")
    sep = int(radius)

    # Matrix index of each grid pixel (-1 outside `pixels`, or long-range: those go last).
    if pixels is None:
        index = np.arange(H * W, dtype=np.int64).reshape(H, W)
    else:
        index = np.full(H * W, -1, dtype=np.int64)
        index[pixels.ravel()] = np.arange(n, dtype=np.int64)
        index = index.reshape(H, W)
    far = np.flatnonzero(long_range)
    if far.size:
        index = index.copy()
        index.ravel()[np.isin(index.ravel(), far)] = -1

    blocks = []   # variables of each emitted node, in post-order
    parent = []

    def emit(vars_, children):
        t = len(blocks)
        blocks.append(vars_)
        parent.append(-1)
        for c in children:
            parent[c] = t
        return t

    def rect(y0, y1, x0, x1):
        v = index[y0:y1, x0:x1].ravel()
        return v[v >= 0]

    # Variables per rectangle in O(1) (a summed-area table), so that the empty
    # rectangles of a masked grid are not cut down to leaves (they emit no node).
    counts = np.zeros((H + 1, W + 1), dtype=np.int64)
    np.cumsum(np.cumsum(index >= 0, axis=0), axis=1, out=counts[1:, 1:])

    def is_empty(y0, y1, x0, x1):
        return counts[y1, x1] - counts[y0, x1] - counts[y1, x0] + counts[y0, x0] == 0

    def split(y0, y1, x0, x1):
        h, w = y1 - y0, x1 - x0
        if h * w <= leaf_size or max(h, w) <= 2 * sep + 1:
            return None
        if w >= h:
            m = x0 + (w - sep) // 2
            return (y0, y1, x0, m), (y0, y1, m + sep, x1), (y0, y1, m, m + sep)
        m = y0 + (h - sep) // 2
        return (y0, m, x0, x1), (m + sep, y1, x0, x1), (m, m + sep, x0, x1)

    def build(y0, y1, x0, x1):
        """Emit the subtree of a rectangle; return its top nodes (0, 1 or more)."""
        if is_empty(y0, y1, x0, x1):
            return []
        parts = split(y0, y1, x0, x1)
        if parts is None:
            v = rect(y0, y1, x0, x1)
            return [emit(v, ())] if v.size else []
        a, b, s = parts
        children = build(*a) + build(*b)
        v = rect(*s)
        if not v.size:  # an empty strip (masked grid): its halves hang from its parent
            return children
        return [emit(v, children)]

    # The top strip joins the long-range variables in the root (the one dense front).
    parts = split(0, H, 0, W)
    if parts is None:
        children, top = [], rect(0, H, 0, W)
    else:
        children = build(*parts[0]) + build(*parts[1])
        top = rect(*parts[2])
    emit(np.concatenate([top, far]).astype(np.int64), children)

    sizes = np.array([b.size for b in blocks], dtype=np.int64)
    node_ptr = np.zeros(len(blocks) + 1, dtype=np.int64)
    np.cumsum(sizes, out=node_ptr[1:])
    perm = np.concatenate(blocks).astype(np.int64)
    return SeparatorTree(perm=perm, node_ptr=node_ptr, parent=np.array(parent, dtype=np.int64),
                         radius=sep, long_range=far)
