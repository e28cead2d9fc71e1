"""From affinities to the Laplacian of semantic soft segmentation."""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sparse

from .._checks import check_fields, feature_array
from ..image import as_float_image
from .matting import matting_affinity
from .superpixel_affinity import color_affinity, semantic_affinity
from .superpixels import superpixels

__all__ = ["GraphParams", "laplacian", "sss_laplacian"]


@dataclass(frozen=True)
class GraphParams:
    """Parameters of the graph of semantic soft segmentation (spec ``sss.md`` §4–8).

    The defaults are the authors' released code; :meth:`paper` gives the
    values printed in the paper where they differ (spec §13).

    Attributes
    ----------
    n_superpixels : int
        Number of SLIC0 superpixels requested (2500).
    superpixel_compactness : float
        Initial SLIC0 compactness (1e-20 in the released code).
    matting_eps : float
        ε of the matting Laplacian, added as ``ε/|ω|`` to the window covariance (1e-7).
    matting_radius : int
        Radius r of the matting windows (1: 3×3 windows).
    semantic_steepness : float
        a_s of Eq. 5 (20).
    semantic_threshold : float
        b_s of Eq. 5: 0.15 in the released code, 0.2 in the paper.
    color_steepness : float
        a_c of Eq. 4 (50).
    color_threshold : float
        b_c of Eq. 4 (0.05).
    color_radius : float
        Superpixels farther apart than this fraction of the image size get no
        colour affinity (0.2).
    sigma_s : float
        σ_S, weight of the semantic affinity in Eq. 6 (0.01).
    sigma_c : float
        σ_C, weight of the colour affinity in Eq. 6 (0.01).
    normalized : bool
        Use the normalised Laplacian D^-1/2 (D - W) D^-1/2 of Eq. 3 (the
        paper) instead of D - W (the released code).

    Examples
    --------
    >>> from unmix.graph import GraphParams
    >>> params = GraphParams(n_superpixels=400)
    >>> params.sigma_s, params.sigma_c, params.normalized
    (0.01, 0.01, False)
    """

    n_superpixels: int = 2500
    superpixel_compactness: float = 1e-20
    matting_eps: float = 1e-7
    matting_radius: int = 1
    semantic_steepness: float = 20.0
    semantic_threshold: float = 0.15
    color_steepness: float = 50.0
    color_threshold: float = 0.05
    color_radius: float = 0.2
    sigma_s: float = 0.01
    sigma_c: float = 0.01
    normalized: bool = False

    @classmethod
    def paper(cls, **overrides):
        """The values of the paper's text: b_s = 0.2 and the normalised Laplacian.

        Examples
        --------
        >>> from unmix.graph import GraphParams
        >>> params = GraphParams.paper()
        >>> params.semantic_threshold, params.normalized
        (0.2, True)
        """
        return cls(**{"semantic_threshold": 0.2, "normalized": True, **overrides})

    def __post_init__(self):
        check_fields(self, {"semantic_threshold": (None, None), "sigma_s": (0.0, None),
                            "sigma_c": (0.0, None)})


def laplacian(W, normalized=False):
    """Graph Laplacian of a symmetric affinity matrix.

    Parameters
    ----------
    W : sparse matrix, shape (N, N)
        Symmetric affinities; negative entries are allowed. Diagonal entries
        cancel in D - W and are ignored.
    normalized : bool, optional
        ``False`` (the released code): L = D - W with D = diag(W 1).
        ``True`` (paper Eq. 3): L = D^-1/2 (D - W) D^-1/2, which needs every
        degree to be positive.

    Returns
    -------
    L : scipy.sparse.csr_matrix, shape (N, N), float64
        Symmetric. In the unnormalised case L 1 = 0; in the normalised case
        L D^1/2 1 = 0.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from unmix.graph import laplacian
    >>> W = sp.csr_matrix(np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 2.0], [0.0, 2.0, 0.0]]))
    >>> laplacian(W).toarray()
    array([[ 1., -1.,  0.],
           [-1.,  3., -2.],
           [ 0., -2.,  2.]])
    >>> L = laplacian(W, normalized=True)   # D^-1/2 (D - W) D^-1/2
    >>> np.diag(L.toarray())
    array([1., 1., 1.])
    """
    if not sparse.issparse(W):
        raise TypeError(f"W must be a scipy sparse matrix, got {type(W).__name__}")
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"W must be square, got shape {W.shape}")
    W = sparse.csr_matrix(W, dtype=np.float64, copy=True)
    if not np.isfinite(W.data).all():
        raise ValueError("W contains NaN or infinite values")
    return _laplacian_in_place(W, normalized)


def _laplacian_in_place(W, normalized):
    """:func:`laplacian` of a CSR float64 W that it may overwrite (no input checks)."""
    W.sum_duplicates()
    degree = np.asarray(W.sum(axis=1)).ravel()
    # D − W in W's own arrays (setdiag writes in place where W stores every diagonal
    # entry, as the matting affinity does): no second N×N matrix, which at 640×480
    # costs more in fresh memory than in arithmetic.
    L = W
    L.data *= -1.0
    L.setdiag(L.diagonal() + degree)
    if normalized:
        if not (degree > 0).all():
            bad = np.flatnonzero(degree <= 0)
            raise ValueError(
                f"the normalised Laplacian needs positive degrees, but {len(bad)} nodes "
                f"have degree <= 0 (first: node {bad[0]}, degree {degree[bad[0]]:.3g})"
            )
        scale = sparse.diags(1.0 / np.sqrt(degree))
        L = (scale @ L @ scale).tocsr()
    L.sort_indices()
    return L


def sss_laplacian(image, features, sp=None, params=None, return_affinities=False):
    """The Laplacian of semantic soft segmentation (paper Eq. 6; spec §8).

    .. math:: L = D - (W_L + \\sigma_S W_S + \\sigma_C W_C),\\quad D = \\operatorname{diag}(W 1)

    with W_L the matting affinity of the image, W_S the semantic affinity of
    the features and W_C the non-local colour affinity, both between
    superpixels.

    Parameters
    ----------
    image : array_like, shape (H, W, 3)
        The image (see :func:`unmix.image.as_float_image`).
    features : array_like, shape (H, W, D)
        Per-pixel features, preprocessed to [0, 1] (for raw network features
        see :mod:`unmix.features`).
    sp : Superpixels, optional
        Superpixels of the image; computed with :func:`superpixels` if omitted.
    params : GraphParams, optional
        Graph parameters; the released code's values by default.
    return_affinities : bool, optional
        Also return a dict with ``W_L``, ``W_S``, ``W_C`` and ``superpixels``.

    Returns
    -------
    L : scipy.sparse.csr_matrix, shape (N, N)
        Symmetric and, because of the negative semantic affinities, indefinite.
    affinities : dict
        Only if ``return_affinities``.

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.features import handcrafted_features
    >>> from unmix.graph import GraphParams, sss_laplacian
    >>> from unmix.image import example_image
    >>> image = example_image("coffee", (24, 32))
    >>> L = sss_laplacian(image, handcrafted_features(image), params=GraphParams(n_superpixels=40))
    >>> L.shape
    (768, 768)
    >>> bool(np.abs(L @ np.ones(768)).max() < 1e-10)   # L·1 = 0
    True
    """
    image = as_float_image(image)
    features = feature_array(features, image.shape[:2])
    params = GraphParams() if params is None else params
    if not isinstance(params, GraphParams):
        raise TypeError(f"params must be a GraphParams, got {type(params).__name__}")
    if sp is None:
        sp = superpixels(image, params.n_superpixels, params.superpixel_compactness)
    W_L = matting_affinity(image, params.matting_eps, params.matting_radius)
    W_S = semantic_affinity(features, sp, params.semantic_steepness, params.semantic_threshold)
    W_C = color_affinity(
        image, sp, params.color_steepness, params.color_threshold, params.color_radius
    )
    # The superpixel affinities touch only the centroid pixels: sum them first, so that
    # one sum runs over the N×N matting affinity.
    L = _laplacian_in_place(W_L + (params.sigma_s * W_S + params.sigma_c * W_C), params.normalized)
    if return_affinities:
        return L, {"W_L": W_L, "W_S": W_S, "W_C": W_C, "superpixels": sp}
    return L
