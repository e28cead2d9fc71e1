"""``soft_color_segments``: unmixing-based soft colour segmentation in one call."""

import warnings
from dataclasses import dataclass

import numpy as np

from .._checks import check_fields, choice, flag, integer
from .._memory import GiB, check_memory, image_pixels
from .._stages import Stages
from ..exceptions import DegenerateInputWarning
from ..image import _is_constant, as_float_image
from ..layers import Layers
from .models import PALETTE_VARIANCE, ColorModels, estimate_color_models
from .refine import matte_radius, refine_colors, regularize_alphas
from .unmixing import SPARSITY, sparse_color_unmixing

__all__ = ["SoftColorSegmentationParams", "soft_color_segments"]


@dataclass(frozen=True)
class SoftColorSegmentationParams:
    """Parameters of soft colour segmentation (Aksoy et al. 2017).

    Defaults are the paper's values, and Koyama's re-implementation's where
    the paper is silent (spec ``color.md`` §10).

    Attributes
    ----------
    sigma : float
        σ ≥ 0, weight of the sparsity term of the unmixing energy (10; 0: no sparsity).
    tau : float
        τ: the model estimation's "well represented" threshold r < τ² (5).
    well_fraction : float
        Model estimation stops when more than this fraction of pixels is
        well represented (0.995).
    max_models : int
        At most this many automatically estimated models (20).
    seed_radius : int
        Radius of the seed neighbourhood and of the guided-filter kernel
        that weights it (10).
    kernel_eps : float
        ε of that kernel (0.01).
    cov_reg : float
        Multiple of I₃ added to estimated covariances (1e-3).
    gradient : {"sobel", "laplacian"}
        ``|∇c|`` of the vote weight (Sobel of the luminance).
    projected_distance : {"marginal", "full3d"}
        D⊥ of the representation score (marginal in-plane covariance).
    palette_variance : float
        Per-channel variance of models made from a palette (5e-3).
    matte_radius : int or None
        Radius r of the matte regularisation's guided filter; None scales
        the paper's r = 60 at 1 MP with the image (:func:`matte_radius`).
    matte_eps : float
        ε of that guided filter (1e-4).
    tol : float
        Tolerance of the per-pixel solvers (1e-8).

    Examples
    --------
    >>> from unmix.color import SoftColorSegmentationParams
    >>> params = SoftColorSegmentationParams(tau=3.0)
    >>> params.sigma, params.tau
    (10.0, 3.0)
    """

    sigma: float = SPARSITY
    tau: float = 5.0
    well_fraction: float = 0.995
    max_models: int = 20
    seed_radius: int = 10
    kernel_eps: float = 0.01
    cov_reg: float = 1e-3
    gradient: str = "sobel"
    projected_distance: str = "marginal"
    palette_variance: float = PALETTE_VARIANCE
    matte_radius: int = None
    matte_eps: float = 1e-4
    tol: float = 1e-8

    def __post_init__(self):
        check_fields(self, {"sigma": (0.0, None), "well_fraction": (0.0, 1.0),
                            "max_models": (2, None), "cov_reg": (0.0, None)})
        choice("SoftColorSegmentationParams.gradient", self.gradient, ("sobel", "laplacian"))
        choice("SoftColorSegmentationParams.projected_distance", self.projected_distance,
               ("marginal", "full3d"))


def _models(image, n_layers, models, palette, params):
    given = [name for name, value in (("n_layers", n_layers), ("models", models),
                                      ("palette", palette)) if value is not None]
    if len(given) > 1:
        raise ValueError(f"give at most one of n_layers, models and palette, got {', '.join(given)}")
    if models is not None:
        if not isinstance(models, ColorModels):
            raise TypeError(f"models must be a ColorModels, got {type(models).__name__}")
        return models
    if palette is not None:
        return ColorModels.from_palette(palette, params.palette_variance)
    return estimate_color_models(
        image, n_models=n_layers, tau=params.tau, well_fraction=params.well_fraction,
        max_models=params.max_models, radius=params.seed_radius, kernel_eps=params.kernel_eps,
        cov_reg=params.cov_reg, gradient=params.gradient,
        projected_distance=params.projected_distance)


def soft_color_segments(image, n_layers=None, models=None, palette=None, method="fast",
                        params=None, progress=False, keep_intermediates=False):
    """Unmixing-based soft colour segmentation (Aksoy, Aydin, Smolić, Pollefeys 2017).

    Decomposes an image into K layers of homogeneous colour whose alphas sum
    to one and which add back up to the image: c = Σ_i α_i u_i. The stages
    (spec ``color.md`` §1) are colour models (:mod:`unmix.color.models`),
    sparse colour unmixing per pixel (:mod:`unmix.color.unmixing`), matte
    regularisation by a guided filter, and colour refinement
    (:mod:`unmix.color.refine`).

    Parameters
    ----------
    image : array_like, shape (H, W, 3)
        uint8, uint16 or floats in [0, 1].
    n_layers : int, optional
        Estimate exactly this many colour models (≥ 2). By default the
        paper's estimation decides how many.
    models : ColorModels, optional
        User-given colour models (means and covariances).
    palette : array_like, shape (K, 3), optional
        Mean colours in [0, 1] (or uint8), as FSCS takes; each model gets
        the covariance ``params.palette_variance · I₃``.
    method : {"fast", "mom"}, optional
        ``"fast"``: the reduced solver on the simplex with closed-form
        colours, then the closed-form refinement (seconds per megapixel).
        ``"mom"``: the paper's method of multipliers for the unmixing and the
        refinement (milliseconds per pixel).
    params : SoftColorSegmentationParams, optional
    progress : bool, optional
        Show a progress bar over the stages.
    keep_intermediates : bool, optional
        Also keep ``unmixed_alphas``, ``unmixed_colors`` (before the
        regularisation) and ``regularized_alphas``.

    Returns
    -------
    Layers
        ``alphas`` (H, W, K) in [0, 1] summing to one, ``colors``
        (H, W, K, 3) in [0, 1]. ``intermediates`` holds ``models``
        (:class:`ColorModels`), ``timings`` (seconds per stage),
        ``matte_radius`` and ``n_fallback`` (pixels that kept their
        unfiltered alphas), and with ``keep_intermediates`` the stage outputs.

    Raises
    ------
    TypeError, ValueError
        If an argument is not as described (the message names it), or the
        automatic estimation finds a single colour in a non-constant image
        (ask for ``n_layers`` or pass a ``palette``).
    unmix.exceptions.InsufficientMemoryError
        If the run would need more memory than is available.

    Warns
    -----
    unmix.exceptions.DegenerateInputWarning
        For a constant image without ``models`` or ``palette``: one layer of
        alpha 1 with the image's colour is returned, the exact decomposition.
        Also when every pixel is well represented by fewer models than
        ``n_layers``; those are returned.

    Examples
    --------
    >>> from unmix import soft_color_segments
    >>> from unmix.image import example_image
    >>> layers = soft_color_segments(example_image("coffee", (60, 80)),
    ...                              palette=[[0.1, 0.05, 0.02], [0.8, 0.5, 0.3], [0.9, 0.9, 0.85]])
    >>> layers.alphas.shape, layers.colors.shape
    ((60, 80, 3), (60, 80, 3, 3))
    """
    shape = image_pixels(image)
    if shape is not None:
        # bench_color.py's peaks: 0.13, 0.49 and 1.90 GB at 0.25, 1 and 4 megapixels.
        check_memory(0.05 * GiB + 500.0 * shape[0] * shape[1],
                     f"soft_color_segments of a {shape[0]}×{shape[1]} image",
                     "segment a smaller image (unmix.image.resize_image) or tiles of it")
    image = as_float_image(image)
    params = SoftColorSegmentationParams() if params is None else params
    if not isinstance(params, SoftColorSegmentationParams):
        raise TypeError(f"params must be a SoftColorSegmentationParams, got {type(params).__name__}")
    method = choice("method", method, ("fast", "mom"))
    n_layers = None if n_layers is None else integer("n_layers", n_layers, 2)
    progress, keep_intermediates = flag("progress", progress), flag("keep_intermediates",
                                                                    keep_intermediates)
    if models is None and palette is None and _is_constant(image):
        # One layer of the image's colour is then the exact decomposition (c = 1·u).
        warnings.warn(
            f"the image is constant (every pixel is {np.round(image[0, 0], 4).tolist()}): it "
            "has a single colour; returning 1 layer (alpha = 1, the image's colour)"
            + ("" if n_layers is None else f" instead of n_layers = {n_layers}"),
            DegenerateInputWarning, stacklevel=2)
        return Layers(np.ones(image.shape[:2] + (1,)), image[:, :, None, :].copy(),
                      intermediates={"timings": {}})
    radius = params.matte_radius or matte_radius(image.shape)
    with Stages("soft colour segmentation", 4, progress) as stages:
        models = stages.run("colour models", _models, image, n_layers, models, palette, params)
        unmixed_alphas, unmixed_colors = stages.run(
            "unmixing", sparse_color_unmixing, image, models, method=method, sigma=params.sigma,
            tol=params.tol)
        regularized, n_fallback = stages.run("matte regularisation", regularize_alphas, image,
                                             unmixed_alphas, radius, params.matte_eps,
                                             return_fallback=True)
        alphas, colors = stages.run("colour refinement", refine_colors, image, models,
                                    regularized, method=method, initial_colors=unmixed_colors)
    intermediates = {"models": models, "timings": stages.timings, "matte_radius": radius,
                     "n_fallback": n_fallback}
    if keep_intermediates:
        intermediates.update(unmixed_alphas=unmixed_alphas, unmixed_colors=unmixed_colors,
                             regularized_alphas=regularized)
    return Layers(np.clip(alphas, 0.0, 1.0), colors, intermediates=intermediates)
