"""``semantic_soft_segments``: the whole method, composed from its stages."""

import warnings
from dataclasses import dataclass, field, replace

import numpy as np

from .._backend import get_backend, to_host
from .._checks import check_fields, choice, flag, integer, seed
from .._memory import GiB, check_memory, image_pixels
from .._stages import Stages
from ..exceptions import DegenerateInputWarning
from ..features import feature_image
from ..filters import guided_filter
from ..graph import GraphParams, sss_laplacian, superpixels
from ..image import _is_constant, as_float_image, resize_image
from ..layers import Layers
from .constrained import constrained_sparsification, kmeans_init
from .eigen import smallest_eigenpairs
from .grouping import group_segments
from .relaxed import MAX_WEIGHT, relaxed_sparsification

__all__ = ["SemanticSoftSegmentationParams", "semantic_soft_segments"]


@dataclass(frozen=True)
class SemanticSoftSegmentationParams:
    """Parameters of semantic soft segmentation (Aksoy et al. 2018).

    Defaults are the authors' released code; :meth:`paper` gives the paper
    text's values where they differ (spec ``sss.md`` §13).

    Attributes
    ----------
    graph : GraphParams
        Superpixels, affinities and Laplacian (§4–8).
    n_eigs : int
        Number of smallest-magnitude eigenpairs K (100).
    n_init_layers : int
        Soft segments of the constrained sparsification, initialised by
        k-means on the features (40).
    constrained_iters : int
        IRLS iterations of the constrained sparsification (40).
    gamma : float
        Sparsity exponent γ of the constrained sparsification (0.8).
    prune_threshold : float
        Segments whose ``max |α|`` falls to this are dropped (0.1).
    relaxed_iters : int
        IRLS iterations of the relaxed sparsification (20).
    lam : float
        λ (δ): weight of the soft sum-to-one term of the relaxed stage (100).
    pcg_rtol, pcg_maxiter, final_maxiter : float, int, int
        Inner solves of the relaxed stage (1e-6, 100, 1000).
    preconditioner : {"block-jacobi", None}
        Preconditioner of the relaxed stage's solves; ``None`` is the
        released code's unpreconditioned CG.
    feature_clamp, feature_window, feature_eps : float, int, float
        Preprocessing of raw (D > 3) features: clamp ±5, guided filter with
        a 10-pixel window and ε = 0.01 (§3).
    fast_pixels : int
        ``mode="fast"`` runs the spectral stages on the image reduced to about
        this many pixels (10,000: about 115×87 for a 640×480 image; the time of
        the constrained stage there is proportional to it).
    fast_upsample_eps : float
        ε of the guided filter that sharpens the upsampled segments along the
        full-resolution image's edges in ``mode="fast"``.
    fast_relaxed_iters : int
        IRLS steps of the relaxed sparsification at full resolution in
        ``mode="fast"`` (4), which starts from the upsampled result of all
        ``relaxed_iters`` steps at the reduced resolution.

    Examples
    --------
    >>> from unmix import SemanticSoftSegmentationParams
    >>> from unmix.graph import GraphParams
    >>> params = SemanticSoftSegmentationParams(n_eigs=50, graph=GraphParams(n_superpixels=400))
    >>> params.n_eigs, params.graph.n_superpixels, params.gamma
    (50, 400, 0.8)
    """

    graph: GraphParams = field(default_factory=GraphParams)
    n_eigs: int = 100
    n_init_layers: int = 40
    constrained_iters: int = 40
    gamma: float = 0.8
    prune_threshold: float = 0.1
    relaxed_iters: int = 20
    lam: float = 100.0
    pcg_rtol: float = 1e-6
    pcg_maxiter: int = 100
    final_maxiter: int = 1000
    preconditioner: str = "block-jacobi"
    feature_clamp: float = 5.0
    feature_window: int = 10
    feature_eps: float = 0.01
    fast_pixels: int = 10000
    fast_upsample_eps: float = 1e-4
    fast_relaxed_iters: int = 4

    @classmethod
    def paper(cls, **overrides):
        """The paper's values: b_s = 0.2 and the normalised Laplacian (Eqs. 3, 5).

        Examples
        --------
        >>> from unmix import SemanticSoftSegmentationParams
        >>> params = SemanticSoftSegmentationParams.paper()
        >>> params.graph.semantic_threshold, params.graph.normalized
        (0.2, True)
        """
        return cls(**{"graph": GraphParams.paper(), **overrides})

    def __post_init__(self):
        if not isinstance(self.graph, GraphParams):
            raise TypeError(f"graph must be a GraphParams, got {type(self.graph).__name__}")
        choice("SemanticSoftSegmentationParams.preconditioner", self.preconditioner,
               ("block-jacobi", None))
        check_fields(self, {"n_eigs": (2, None), "gamma": (0.0, 2.0, "open"),
                            "prune_threshold": (0.0, 1.0), "lam": (0.0, MAX_WEIGHT, "low-open")})


def semantic_soft_segments(image, features=None, n_segments=5, params=None, random_state=0,
                           mode="full", progress=False, keep_intermediates=False, device="cpu"):
    """Semantic soft segmentation of an image (Aksoy et al., SIGGRAPH 2018).

    Parameters
    ----------
    image : array_like, shape (H, W, 3)
        The image (uint8, uint16 or floats in [0, 1]; see
        :func:`unmix.image.as_float_image`).
    features : None, "handcrafted", array_like (H, W, D), callable or torch.nn.Module, optional
        Per-pixel semantic features. ``None`` uses the hypercolumns of a
        pretrained network (:func:`unmix.features.network_features`,
        EfficientNet-Lite0 on ImageNet, run without torch) preprocessed as the
        released code preprocesses its network's embeddings;
        ``"handcrafted"`` the colour and position statistics of
        :func:`unmix.features.handcrafted_features`; an (H, W, 3) array in
        [0, 1] is used as is; an (H, W, D > 3) raw embedding is preprocessed
        as the released code does (:func:`unmix.features.preprocess_features`);
        a callable ``image -> (H, W, D)`` is called on the float image; a
        ``torch.nn.Module`` (1, 3, H, W) → (1, D, h, w) runs through
        :class:`unmix.nets.TorchFeatureExtractor`.
    n_segments : int, optional
        Number of output layers (5).
    params : SemanticSoftSegmentationParams, optional
        The released code's values by default.
    random_state : int, optional
        Seed of the two k-means steps; the result is deterministic for a seed.
    mode : {"full", "fast"}, optional
        ``"full"`` runs every stage at full resolution, as the paper.
        ``"fast"`` runs every stage on the image reduced to about
        ``params.fast_pixels`` pixels, upsamples the segments with edge-aware
        guidance (a guided filter with the full-resolution image as guide)
        and finishes with ``params.fast_relaxed_iters`` steps of relaxed
        sparsification at full resolution. Its result differs from
        ``"full"``; ``benchmarks/bench_sss.py`` reports by how much.
    progress : bool, optional
        Show a progress bar over the stages.
    device : {"cpu", "gpu"}, optional
        Where the eigenpairs and both sparsifications run (``"cpu"``). On ``"gpu"``
        (CuPy and a CUDA device; cuDSS through nvmath-python for the eigensolver's
        factor, the ``gpu`` extra) the Laplacian is moved to the device once and the
        eigenvectors and segments stay there between those stages; features,
        superpixels, the Laplacian, k-means and grouping run on the CPU. The result
        matches the CPU's up to rounding, which the constrained stage amplifies (see
        ``benchmarks/README.md``).
    keep_intermediates : bool, optional
        Keep the stage outputs in ``Layers.intermediates``: ``features``,
        ``superpixels``, ``laplacian``, ``eigvals``, ``eigvecs``,
        ``initial_segments`` (constrained stage) and ``grouped_segments``; in
        fast mode these are at the reduced resolution, and ``relaxed_reduced``,
        ``upsampled_segments``, ``full_superpixels`` and ``full_laplacian``
        are added. They are NumPy arrays and SciPy matrices on either device.

    Returns
    -------
    Layers
        ``alphas`` of shape (H, W, n_segments); they sum to one up to about
        1e-5 and are not clamped (values in about [-0.1, 1.1]). An image
        that supports fewer layers gives fewer, with a warning (below).

    Raises
    ------
    TypeError, ValueError
        If an argument is not as described; the message names it.
    unmix.exceptions.InsufficientMemoryError
        If the run would need more memory than is available (checked before
        anything large is allocated).

    Warns
    -----
    unmix.exceptions.DegenerateInputWarning
        If the image supports fewer than ``n_segments`` layers, which are then
        returned: one layer of alpha 1 for a constant image (nothing is
        computed), or the segments that survive the constrained
        sparsification's pruning (e.g. for constant features, or an image
        with little structure).

    Examples
    --------
    Five soft segments of a small photograph in fast mode, from the handcrafted
    features (the default network features are as quick):

    >>> import numpy as np
    >>> import unmix
    >>> image = unmix.image.example_image("coffee", (18, 24))
    >>> layers = unmix.semantic_soft_segments(image, features="handcrafted", mode="fast",
    ...                                       random_state=0)
    >>> layers
    Layers(5 layers of 18×24)
    >>> bool(np.abs(layers.alphas.sum(axis=2) - 1).max() < 1e-3)
    True
    """
    mode = choice("mode", mode, ("full", "fast"))
    _check_memory(image_pixels(image), mode)
    image = as_float_image(image)
    params = SemanticSoftSegmentationParams() if params is None else params
    if not isinstance(params, SemanticSoftSegmentationParams):
        raise TypeError(f"params must be a SemanticSoftSegmentationParams, got {type(params).__name__}")
    # Each output layer is a group of the constrained stage's segments, which live in
    # the span of the n_eigs eigenvectors: neither count can be below n_segments.
    n_segments = integer("n_segments", n_segments, 1, min(params.n_init_layers, params.n_eigs))
    random_state = seed("random_state", random_state)
    progress, keep_intermediates = flag("progress", progress), flag("keep_intermediates",
                                                                    keep_intermediates)
    backend = get_backend(device)
    height, width = image.shape[:2]
    if _is_constant(image):
        warnings.warn(
            f"the image is constant (every pixel is {_colour(image[0, 0])}): it has no structure "
            f"to segment; returning 1 layer (alpha = 1 everywhere) instead of n_segments = "
            f"{n_segments}", DegenerateInputWarning, stacklevel=2)
        return Layers(np.ones((height, width, 1)), intermediates={"timings": {}})
    if height * width < params.n_init_layers:
        raise ValueError(
            f"image has {height * width} pixels ({height}×{width}); semantic soft segmentation "
            f"starts from n_init_layers = {params.n_init_layers} segments and needs at least as "
            "many pixels"
        )
    factor = np.sqrt(height * width / params.fast_pixels)
    reduced = mode == "fast" and factor > 1
    n_stages = (13 if reduced else 8) + backend.is_gpu  # + "to device"
    with Stages("semantic soft segmentation", n_stages, progress,
                synchronize=backend.synchronize) as stages:
        F = stages.run("features", feature_image, features, image, params.feature_clamp,
                       params.feature_window, params.feature_eps)
        if reduced:
            small = (max(int(round(height / factor)), 8), max(int(round(width / factor)), 8))
            image_small, F_small = stages.run(
                "reduce", lambda: (resize_image(image, small), resize_image(F, small)))
            # The superpixels keep their size in pixels, so their count follows the image area.
            n_small = max(int(round(params.graph.n_superpixels / factor**2)), 16)
            params_small = replace(params, graph=replace(params.graph, n_superpixels=n_small))
            spectral = _spectral_segments(image_small, F_small, n_segments, params_small,
                                          random_state, stages, backend, kmeans_features=F)
            relaxed_small = stages.run("relaxed sparsification", _relaxed, spectral["grouped_segments"],
                                       spectral["laplacian"], image_small, params, params.relaxed_iters,
                                       backend)
            upsampled = stages.run("upsample", _upsample_segments, relaxed_small, image,
                                   params.fast_upsample_eps)
            sp = stages.run("superpixels (full)", superpixels, image, params.graph.n_superpixels,
                            params.graph.superpixel_compactness)
            L = stages.run("Laplacian (full)", sss_laplacian, image, F, sp, params.graph)
            alphas = stages.run("relaxed sparsification (full)", _relaxed, upsampled, L, image, params,
                                params.fast_relaxed_iters, backend)
            spectral["relaxed_reduced"] = relaxed_small
            spectral["upsampled_segments"] = upsampled
        else:
            spectral = _spectral_segments(image, F, n_segments, params, random_state, stages,
                                          backend)
            L, sp = spectral["laplacian"], spectral["superpixels"]
            alphas = stages.run("relaxed sparsification", _relaxed, spectral["grouped_segments"], L,
                                image, params, params.relaxed_iters, backend)
    intermediates = {"timings": stages.timings}
    if keep_intermediates:
        intermediates.update({name: to_host(value) for name, value in spectral.items()},
                             features=F, full_superpixels=sp, full_laplacian=L)
    return Layers(to_host(alphas), intermediates=intermediates)


#: Peak memory of a run, bytes = base + per_pixel · H·W, from bench_sss.py's fresh-process
#: peaks (2026-12-04, network features): full 2.04 GB at 640×480 and 0.68 GB at 320×240,
#: fast 0.50 GB and 0.29 GB; the model stays above each of them.
_PEAK_BYTES = {"full": (0.25 * GiB, 6200.0), "fast": (0.2 * GiB, 1000.0)}


def _check_memory(shape, mode):
    """Refuse a run whose estimated peak memory exceeds what is available (see unmix._memory)."""
    if shape is None:  # not an image: as_float_image says what is wrong
        return
    base, per_pixel = _PEAK_BYTES[mode]
    height, width = shape
    advice = ("use mode='fast' (about 1 kB per pixel) or a smaller image "
              "(unmix.image.resize_image; --size on the command line)" if mode == "full"
              else "use a smaller image (unmix.image.resize_image; --size on the command line)")
    check_memory(base + per_pixel * height * width,
                 f"semantic_soft_segments(mode={mode!r}) of a {height}×{width} image", advice)


def _colour(rgb):
    return "(" + ", ".join(f"{value:.4g}" for value in rgb) + ")"


def _spectral_segments(image, F, n_segments, params, random_state, stages, backend,
                       kmeans_features=None):
    """From the image and its features to grouped soft segments (spec §4–11).

    ``kmeans_features`` are the features the k-means initialisation fits its
    centres on (default ``F``): fast mode passes the full-resolution ones. On the
    GPU the eigenvectors and the constrained stage's segments stay on the device
    (``backend``) and come back to the host for the returned intermediates.
    """
    height, width = image.shape[:2]
    sp = stages.run("superpixels", superpixels, image, params.graph.n_superpixels,
                    params.graph.superpixel_compactness)
    L = stages.run("Laplacian", sss_laplacian, image, F, sp, params.graph)
    # On the GPU: L once on the device, so that the eigenvectors come back as CuPy arrays.
    L_stage = stages.run("to device", backend.csr, L) if backend.is_gpu else L
    eigvals, eigvecs = stages.run("eigenpairs", smallest_eigenpairs, L_stage,
                                  min(params.n_eigs, height * width - 1), shape=(height, width))
    labels = stages.run("k-means", kmeans_init, F, params.n_init_layers, random_state,
                        fit_features=kmeans_features)
    initial = stages.run(
        "constrained sparsification", constrained_sparsification, eigvecs, eigvals, labels,
        (height, width), n_components=params.n_init_layers, iterations=params.constrained_iters,
        sparsity=params.gamma, prune_threshold=params.prune_threshold,
        laplacian_ones=(L @ np.ones(L.shape[0])) if params.graph.normalized else None,
    )
    initial = to_host(initial)
    if initial.shape[2] < n_segments:
        n_found = initial.shape[2]
        reason = ("the features are constant, so k-means and the semantic affinity separate "
                  "nothing" if _is_constant(F) else "the image has too little structure")
        warnings.warn(
            f"only {n_found} of the soft segments remain after the constrained sparsification "
            f"(it drops those whose max |alpha| falls to prune_threshold = "
            f"{params.prune_threshold:g}): {reason} for n_segments = {n_segments}; returning "
            f"{n_found} layer{'s' if n_found > 1 else ''}", DegenerateInputWarning, stacklevel=4)
        n_segments = initial.shape[2]
    grouped = stages.run("grouping", group_segments, initial, F, n_segments,
                         random_state=random_state)
    return {"features": F, "superpixels": sp, "laplacian": L, "eigvals": eigvals,
            "eigvecs": eigvecs, "initial_segments": initial, "grouped_segments": grouped}


def _relaxed(alphas, L, image, params, iterations, backend):
    if alphas.shape[2] == 1:  # one layer summing to one is alpha = 1: nothing to relax
        return backend.xp.ones_like(alphas)
    return relaxed_sparsification(
        alphas, L, image, iterations=iterations, lam=params.lam, rtol=params.pcg_rtol,
        maxiter=params.pcg_maxiter, final_maxiter=params.final_maxiter,
        preconditioner=params.preconditioner, device=backend.device,
    )


def _upsample_segments(segments, image, eps):
    """Bilinear upsampling of soft segments, sharpened along the image's edges.

    The guided filter (window about twice the reduction factor) replaces each
    upsampled matte locally by an affine function of the full-resolution
    colours, which moves soft transitions onto the image's edges. It is
    linear and keeps constants, so the segments still sum to one.
    """
    from skimage.transform import resize

    height, width = image.shape[:2]
    factor = height / segments.shape[0]
    up = resize(segments, (height, width, segments.shape[2]), order=1)
    window = 2 * int(np.ceil(factor)) + 1
    return guided_filter(up, image, window, eps)
