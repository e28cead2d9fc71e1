"""SLIC superpixels, their 8-connected adjacency and their centroid pixels.

The superpixel graph of semantic soft segmentation enters the pixel graph only
through one "anchor" pixel per superpixel: the pixel at its rounded centroid
(Aksoy et al. 2018, Sec. 3.2; spec ``sss.md`` §4).
"""

from dataclasses import dataclass, field

import numpy as np

from .._checks import positive
from ..image import as_float_image

__all__ = ["Superpixels", "superpixels"]


@dataclass(frozen=True, eq=False)
class Superpixels:
    """A label image with the derived quantities the affinities need.

    Build it with :func:`superpixels` or, to inject labels computed elsewhere,
    with :meth:`Superpixels.from_labels`.

    Attributes
    ----------
    labels : ndarray, shape (H, W), int64
        Superpixel label of every pixel, contiguous in ``0 .. n_segments - 1``.
    centroids : ndarray, shape (n_segments, 2), int64
        ``(row, col)`` of each superpixel's centroid (the mean of its pixels'
        coordinates), rounded half away from zero as MATLAB's ``round`` does.
        The centroid of a non-convex superpixel may lie outside it, and two
        superpixels may share a centroid pixel; both are kept as in the
        released code (spec §4.3).
    centroid_index : ndarray, shape (n_segments,), int64
        Row-major pixel index ``row * W + col`` of each centroid.
    adjacency : ndarray, shape (E, 2), int64
        Every unordered pair ``(s, t)``, ``s < t``, of labels that touch in
        the 8-neighbourhood, each pair once, sorted lexicographically.
    counts : ndarray, shape (n_segments,), int64
        Number of pixels of each superpixel.

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.graph import Superpixels
    >>> sp = Superpixels.from_labels(np.repeat([[0, 0, 1, 1, 2, 2]], 4, axis=0))
    >>> sp.n_segments, sp.shape
    (3, (4, 6))
    >>> sp.adjacency          # pairs of labels that touch
    array([[0, 1],
           [1, 2]])
    >>> sp.centroids[0]       # (row, col), rounded as MATLAB does
    array([2, 1])
    """

    labels: np.ndarray
    centroids: np.ndarray = field(repr=False)
    centroid_index: np.ndarray = field(repr=False)
    adjacency: np.ndarray = field(repr=False)
    counts: np.ndarray = field(repr=False)

    @property
    def n_segments(self):
        """Number of superpixels."""
        return len(self.counts)

    @property
    def shape(self):
        """``(H, W)`` of the label image."""
        return self.labels.shape

    def __repr__(self):
        return f"Superpixels(n_segments={self.n_segments}, shape={self.shape})"

    @classmethod
    def from_labels(cls, labels):
        """Build the superpixel structure from a label image.

        Parameters
        ----------
        labels : array_like of int, shape (H, W)
            Any integer labels (negative values included). They are relabelled
            to ``0 .. n - 1`` in increasing order of the original values;
            every label should be one connected region, as SLIC's are, but
            this is not required.

        Returns
        -------
        Superpixels

        Examples
        --------
        Labels computed elsewhere are relabelled to ``0 .. n - 1``:

        >>> import numpy as np
        >>> from unmix.graph import Superpixels
        >>> sp = Superpixels.from_labels([[7, 7, -1], [7, -1, -1], [5, 5, 5]])
        >>> sp.labels
        array([[2, 2, 0],
               [2, 0, 0],
               [1, 1, 1]])
        >>> sp.counts
        array([3, 3, 3])
        """
        labels = np.asarray(labels)
        if labels.ndim != 2:
            raise ValueError(f"labels must be a 2-D array (H, W), got shape {labels.shape}")
        if labels.size == 0:
            raise ValueError("labels must not be empty")
        if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
            raise TypeError(f"labels must have an integer dtype, got {labels.dtype}")
        _, dense = np.unique(labels, return_inverse=True)
        dense = dense.reshape(labels.shape).astype(np.int64)
        height, width = dense.shape
        n = int(dense.max()) + 1

        counts = np.bincount(dense.ravel(), minlength=n)
        rows, cols = np.indices(dense.shape)
        row_sums = np.bincount(dense.ravel(), weights=rows.ravel(), minlength=n)
        col_sums = np.bincount(dense.ravel(), weights=cols.ravel(), minlength=n)
        # Integer half-up rounding of sum/count: floor((2 s + c) / (2 c)).
        # Centroids at exactly .5 are common (regions of even extent) and
        # MATLAB rounds them away from zero where NumPy would round to even.
        row_sums = np.rint(row_sums).astype(np.int64)
        col_sums = np.rint(col_sums).astype(np.int64)
        centroids = np.stack(
            [(2 * row_sums + counts) // (2 * counts), (2 * col_sums + counts) // (2 * counts)],
            axis=1,
        )
        centroid_index = centroids[:, 0] * width + centroids[:, 1]
        return cls(
            labels=dense,
            centroids=centroids,
            centroid_index=centroid_index,
            adjacency=_adjacent_pairs(dense),
            counts=counts,
        )

    def mean(self, values):
        """Mean of per-pixel values over each superpixel.

        Parameters
        ----------
        values : array_like, shape (H, W) or (H, W, D)

        Returns
        -------
        means : ndarray, shape (n_segments,) or (n_segments, D), float64

        Examples
        --------
        >>> import numpy as np
        >>> from unmix.graph import Superpixels
        >>> sp = Superpixels.from_labels(np.repeat([[0, 0, 1, 1]], 2, axis=0))
        >>> sp.mean(np.array([[1.0, 3.0, 10.0, 20.0], [1.0, 3.0, 10.0, 20.0]]))
        array([ 2., 15.])
        """
        values = np.asarray(values, dtype=np.float64)
        if values.shape[:2] != self.shape:
            raise ValueError(
                f"values must have the superpixels' shape {self.shape} in their first "
                f"two axes, got shape {values.shape}"
            )
        flat = values.reshape(self.labels.size, -1)
        sums = np.stack(
            [np.bincount(self.labels.ravel(), weights=flat[:, d], minlength=self.n_segments)
             for d in range(flat.shape[1])],
            axis=1,
        )
        means = sums / self.counts[:, None]
        return means[:, 0] if values.ndim == 2 else means


def _adjacent_pairs(labels):
    """Unique label pairs that touch in the 8-neighbourhood (spec §4.2)."""
    # Comparing each pixel with its right, lower, lower-right and lower-left
    # neighbours visits every 8-connected pixel pair exactly once.
    shifts = [
        (labels[:, :-1], labels[:, 1:]),
        (labels[:-1, :], labels[1:, :]),
        (labels[:-1, :-1], labels[1:, 1:]),
        (labels[:-1, 1:], labels[1:, :-1]),
    ]
    a = np.concatenate([s.ravel() for s, _ in shifts])
    b = np.concatenate([t.ravel() for _, t in shifts])
    differ = a != b
    a, b = a[differ], b[differ]
    pairs = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)
    if len(pairs) == 0:
        return np.empty((0, 2), dtype=np.int64)
    return np.unique(pairs, axis=0).astype(np.int64)


def superpixels(image, n_segments=2500, compactness=1e-20, max_num_iter=10):
    """SLIC0 superpixels of an image, as the released SSS code computes them.

    Parameters
    ----------
    image : array_like, shape (H, W, 3)
        The image (see :func:`unmix.image.as_float_image`).
    n_segments : int, optional
        Approximate number of superpixels requested (the paper's 2500).
    compactness : float, optional
        Initial SLIC compactness. With SLIC0 it is adapted per superpixel after
        the first iteration; the released code passes 1e-20, so that first
        iteration is essentially colour clustering within the search windows.
    max_num_iter : int, optional
        Number of k-means iterations of SLIC.

    Returns
    -------
    Superpixels

    Notes
    -----
    Uses :func:`skimage.segmentation.slic` with ``slic_zero=True``, conversion
    to L*a*b* and no Gaussian presmoothing (``sigma=0``), which is what MATLAB's
    ``superpixels(I, 2500, 'Compactness', 1e-20)`` does (spec §4.1). The labels
    do not match MATLAB's pixel for pixel, so every later stage also accepts
    injected superpixels (:meth:`Superpixels.from_labels`).

    Examples
    --------
    >>> from unmix.graph import superpixels
    >>> from unmix.image import example_image
    >>> sp = superpixels(example_image("coffee", (24, 32)), n_segments=40)
    >>> sp.labels.shape, int(sp.counts.sum())
    ((24, 32), 768)
    >>> bool(sp.labels.max() == sp.n_segments - 1)
    True
    """
    from skimage.segmentation import slic

    image = as_float_image(image)
    if not (isinstance(n_segments, (int, np.integer)) and n_segments >= 1):
        raise ValueError(f"n_segments must be a positive integer, got {n_segments!r}")
    positive("compactness", compactness)
    labels = slic(
        image,
        n_segments=int(n_segments),
        compactness=float(compactness),
        max_num_iter=int(max_num_iter),
        sigma=0,
        slic_zero=True,
        convert2lab=True,
        enforce_connectivity=True,
        start_label=0,
    )
    return Superpixels.from_labels(labels)
