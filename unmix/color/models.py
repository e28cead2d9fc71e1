"""Colour models of soft colour segmentation: one 3-D normal distribution per layer.

Each layer i of the alpha-add model has a colour model N(μ_i, Σ_i) in RGB
(spec ``color.md`` §0); its layer colours pay the squared Mahalanobis
distance D_i(u) = (u − μ_i)ᵀ Σ_i⁻¹ (u − μ_i). The models come from

- :func:`estimate_color_models`: the paper's automatic estimation (Aksoy et
  al. 2017 §5; spec §2), which adds models one at a time where the image is
  worst represented by the models so far (:func:`representation_score`, §3);
- :meth:`ColorModels.from_palette`: a palette of mean colours, as Fast Soft
  Color Segmentation takes, with a documented default covariance;
- :class:`ColorModels` directly: user-given means and covariances.
"""

import logging
import math
import warnings
from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from scipy.ndimage import laplace, sobel, uniform_filter

from .._checks import as_array, choice, integer, positive, real, real_array
from .._numba import threads_for
from ..filters import box_filter
from ..exceptions import DegenerateInputWarning
from ..image import as_float_image

__all__ = [
    "ColorModels",
    "PALETTE_VARIANCE",
    "estimate_color_models",
    "representation_score",
]

log = logging.getLogger("unmix")

#: Default per-channel variance of the models made from a palette (Σ = s² I₃,
#: s ≈ 0.07 on the [0, 1] scale): about the covariance the automatic
#: estimation finds on flat regions of photographs (its 1e-3 regulariser plus
#: the texture), so that palette layers are as homogeneous as estimated ones.
PALETTE_VARIANCE = 5e-3

#: Two palette colours closer than this (Euclidean, [0, 1] scale) are duplicates.
_DUPLICATE_DISTANCE = 1e-3


@dataclass(frozen=True, eq=False)
class ColorModels:
    """The colour models N(μ_i, Σ_i) of K layers.

    Parameters
    ----------
    means : array_like, shape (K, 3)
        Mean colours μ_i in [0, 1], pairwise distinct.
    covariances : array_like, shape (K, 3, 3)
        Symmetric positive definite covariances Σ_i.

    Attributes
    ----------
    precisions : ndarray, shape (K, 3, 3)
        Σ_i⁻¹.

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.color import ColorModels
    >>> models = ColorModels(np.array([[0.9, 0.1, 0.1], [0.1, 0.1, 0.9]]),
    ...                      np.stack([0.01 * np.eye(3)] * 2))
    >>> models.n_models
    2
    """

    means: np.ndarray
    covariances: np.ndarray

    def __post_init__(self):
        means = real_array(self.means, "means", (2,))
        if means.shape[1] != 3:
            raise ValueError(f"means must have shape (K, 3), got {means.shape}")
        k = means.shape[0]
        if k < 2:
            raise ValueError(f"soft colour segmentation needs at least 2 colour models, got {k}")
        if means.min() < 0 or means.max() > 1:
            raise ValueError("means must lie in [0, 1] (RGB on the [0, 1] scale), got values in "
                             f"[{means.min():.6g}, {means.max():.6g}]")
        gaps = np.linalg.norm(means[:, None] - means[None], axis=2) + np.eye(k)
        if gaps.min() < _DUPLICATE_DISTANCE:
            i, j = sorted(np.unravel_index(np.argmin(gaps), gaps.shape))
            raise ValueError(f"means {i} and {j} are the same colour {means[i].round(4).tolist()}: "
                             "each layer needs its own colour")
        covs = real_array(self.covariances, "covariances", (3,))
        if covs.shape != (k, 3, 3):
            raise ValueError(f"covariances must have shape ({k}, 3, 3) for {k} means, got {covs.shape}")
        if not np.allclose(covs, covs.transpose(0, 2, 1), rtol=1e-10, atol=1e-14):
            raise ValueError("covariances must be symmetric")
        smallest = np.linalg.eigvalsh(covs)[:, 0]
        # Below this the Mahalanobis distance is dominated by rounding.
        bad = np.flatnonzero(smallest <= 1e-10 * np.maximum(np.abs(covs).max(axis=(1, 2)), 1e-300))
        if bad.size:
            raise ValueError(f"covariances[{bad[0]}] is singular or not positive definite "
                             f"(smallest eigenvalue {smallest[bad[0]]:.3g}); add a multiple of the "
                             "identity (cov_reg) or give a positive definite matrix")
        means.setflags(write=False)
        covs = np.ascontiguousarray(covs)
        covs.setflags(write=False)
        precisions = np.linalg.inv(covs)
        precisions = np.ascontiguousarray((precisions + precisions.transpose(0, 2, 1)) / 2)
        precisions.setflags(write=False)
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "covariances", covs)
        object.__setattr__(self, "precisions", precisions)

    @property
    def n_models(self):
        """Number of models K."""
        return self.means.shape[0]

    def __len__(self):
        return self.n_models

    def __repr__(self):
        return f"ColorModels({self.n_models} models)"

    @classmethod
    def from_palette(cls, palette, variance=PALETTE_VARIANCE):
        """Models from a palette of mean colours: Σ_i = ``variance`` · I₃.

        Parameters
        ----------
        palette : array_like, shape (K, 3)
            Mean colours in [0, 1], or ``uint8`` values in 0…255.
        variance : float or array_like of shape (K,), optional
            Per-channel variance s² of each model (:data:`PALETTE_VARIANCE`).

        Returns
        -------
        ColorModels

        Examples
        --------
        >>> from unmix.color import ColorModels
        >>> models = ColorModels.from_palette([[0.9, 0.1, 0.1], [0.1, 0.1, 0.9]], variance=0.005)
        >>> models.covariances[0]
        array([[0.005, 0.   , 0.   ],
               [0.   , 0.005, 0.   ],
               [0.   , 0.   , 0.005]])
        """
        arr = as_array(palette, "palette")
        if arr.dtype == np.uint8:
            arr = arr / 255.0
        means = real_array(arr, "palette", (2,))
        if means.shape[1] != 3:
            raise ValueError(f"palette must have shape (K, 3) (one RGB colour per layer), "
                             f"got {means.shape}")
        if means.min() < 0 or means.max() > 1:
            raise ValueError(
                f"palette must hold colours in [0, 1], got values in [{means.min():.4g}, "
                f"{means.max():.4g}]; for 0…255 values pass a uint8 array or divide by 255")
        variance = np.broadcast_to(np.asarray(variance, dtype=np.float64), (means.shape[0],))
        if not (np.all(np.isfinite(variance)) and np.all(variance > 0)):
            raise ValueError(f"variance must be positive and finite, got {variance.tolist()}")
        return cls(means, variance[:, None, None] * np.eye(3))

    def squared_distances(self, colors):
        """D_i(c) for every colour and model: shape ``colors.shape[:-1] + (K,)``.

        Examples
        --------
        >>> import numpy as np
        >>> from unmix.color import ColorModels
        >>> models = ColorModels.from_palette([[0.9, 0.1, 0.1], [0.1, 0.1, 0.9]])   # red, blue
        >>> pixels = np.array([[0.9, 0.1, 0.1], [0.5, 0.1, 0.5]])                 # red, purple
        >>> models.squared_distances(pixels)
        array([[  0., 256.],
               [ 64.,  64.]])
        """
        diff = np.asarray(colors, dtype=np.float64)[..., None, :] - self.means
        return np.einsum("...ki,kij,...kj->...k", diff, self.precisions, diff)


def _check_models(models):
    if not isinstance(models, ColorModels):
        raise TypeError(f"models must be a ColorModels, got {type(models).__name__}")
    return models


# --------------------------------------------------------------------- representation score


def representation_score(colors, models, projected_distance="marginal"):
    """How well the models represent each colour: spec §3 (paper Eqs. 14–16).

    ``r(c) = min(min_i D_i(c), min_{i<j} F_ij(c))``, where F_ij is the cost
    of the projected two-layer unmixing of c between models i and j (+∞
    outside the slab between the planes through μ_i and μ_j normal to
    μ_i − μ_j).

    Parameters
    ----------
    colors : array_like, shape (..., 3)
    models : ColorModels
    projected_distance : {"marginal", "full3d"}, optional
        D⊥ of Eq. 16: the Mahalanobis distance with the marginal 2×2
        in-plane covariance (V-SENSE; default) or with the full Σ⁻¹.

    Returns
    -------
    score : ndarray, shape ``colors.shape[:-1]``

    Examples
    --------
    The red pixel is a sample of the red model; the purple one of neither, but
    it is a mixture of the two:

    >>> import numpy as np
    >>> from unmix.color import ColorModels
    >>> models = ColorModels.from_palette([[0.9, 0.1, 0.1], [0.1, 0.1, 0.9]])   # red, blue
    >>> pixels = np.array([[0.9, 0.1, 0.1], [0.5, 0.1, 0.5]])                 # red, purple
    >>> from unmix.color import representation_score
    >>> representation_score(pixels, models).round(6)
    array([0., 0.])
    """
    models = _check_models(models)
    colors = real_array(colors, "colors")
    if colors.ndim < 1 or colors.shape[-1] != 3:
        raise ValueError(f"colors must have shape (..., 3), got {colors.shape}")
    flat = np.ascontiguousarray(colors.reshape(-1, 3))
    score = np.full(flat.shape[0], np.inf)
    for i in range(models.n_models):
        _update_score(flat, models.means, models.covariances, i, score, projected_distance)
    return score.reshape(colors.shape[:-1])


def _update_score(colors, means, covariances, new, score, projected_distance):
    """``score ← min(score, D_new, min_{j<new} F_new,j)`` in place (model ``new`` added)."""
    if projected_distance not in ("marginal", "full3d"):
        raise ValueError(f"projected_distance must be 'marginal' or 'full3d', "
                         f"got {projected_distance!r}")
    means = np.ascontiguousarray(means[: new + 1])
    precisions = np.ascontiguousarray(np.linalg.inv(covariances[: new + 1]))
    if projected_distance == "marginal":
        # Per model and pair: the precision of the marginal in-plane covariance
        # P Σ Pᵀ, P = an orthonormal basis (2×3) of the plane ⟂ n_ij.
        bases = np.zeros((new, 2, 3))
        in_plane = np.zeros((new, 2, 2, 2))  # [pair, which model (new, j), 2, 2]
        for j in range(new):
            n = means[new] - means[j]
            bases[j] = _plane_basis(n / np.linalg.norm(n))
            for side, m in enumerate((new, j)):
                in_plane[j, side] = np.linalg.inv(bases[j] @ covariances[m] @ bases[j].T)
    else:
        bases = np.zeros((new, 2, 3))
        in_plane = np.zeros((new, 2, 2, 2))
    with threads_for(colors.shape[0]):
        _score_kernel(colors, means, precisions, bases, in_plane, projected_distance == "marginal",
                      new, score)


def _plane_basis(n):
    """Two orthonormal vectors spanning the plane ⟂ the unit vector n."""
    helper = np.eye(3)[np.argmin(np.abs(n))]
    e1 = np.cross(n, helper)
    e1 /= np.linalg.norm(e1)
    return np.stack([e1, np.cross(n, e1)])


@njit(cache=True)
def _mahalanobis3(d0, d1, d2, p):
    return (d0 * (p[0, 0] * d0 + p[0, 1] * d1 + p[0, 2] * d2)
            + d1 * (p[1, 0] * d0 + p[1, 1] * d1 + p[1, 2] * d2)
            + d2 * (p[2, 0] * d0 + p[2, 1] * d1 + p[2, 2] * d2))


@njit(cache=True)
def _in_plane_distance(d0, d1, d2, basis, precision2):
    w0 = basis[0, 0] * d0 + basis[0, 1] * d1 + basis[0, 2] * d2
    w1 = basis[1, 0] * d0 + basis[1, 1] * d1 + basis[1, 2] * d2
    return (w0 * (precision2[0, 0] * w0 + precision2[0, 1] * w1)
            + w1 * (precision2[1, 0] * w0 + precision2[1, 1] * w1))


@njit(cache=True, parallel=True)
def _score_kernel(colors, means, precisions, bases, in_plane, marginal, new, score):
    mi = means[new]
    for p in prange(colors.shape[0]):
        c0, c1, c2 = colors[p, 0], colors[p, 1], colors[p, 2]
        best = min(score[p], _mahalanobis3(c0 - mi[0], c1 - mi[1], c2 - mi[2], precisions[new]))
        for j in range(new):
            mj = means[j]
            n0, n1, n2 = mi[0] - mj[0], mi[1] - mj[1], mi[2] - mj[2]
            d = math.sqrt(n0 * n0 + n1 * n1 + n2 * n2)
            n0, n1, n2 = n0 / d, n1 / d, n2 / d
            ti = (c0 - mi[0]) * n0 + (c1 - mi[1]) * n1 + (c2 - mi[2]) * n2
            tj = (c0 - mj[0]) * n0 + (c1 - mj[1]) * n1 + (c2 - mj[2]) * n2
            if abs(ti) > d or abs(tj) > d:
                continue  # outside the slab: F = +∞
            # Projections onto the planes through μ_i, μ_j (Eq. 14); α_i of Eq. 15.
            ui0, ui1, ui2 = c0 - ti * n0, c1 - ti * n1, c2 - ti * n2
            uj0, uj1, uj2 = c0 - tj * n0, c1 - tj * n1, c2 - tj * n2
            ai = abs(tj) / d
            if marginal:
                fi = _in_plane_distance(ui0 - mi[0], ui1 - mi[1], ui2 - mi[2], bases[j], in_plane[j, 0])
                fj = _in_plane_distance(uj0 - mj[0], uj1 - mj[1], uj2 - mj[2], bases[j], in_plane[j, 1])
            else:
                fi = _mahalanobis3(ui0 - mi[0], ui1 - mi[1], ui2 - mi[2], precisions[new])
                fj = _mahalanobis3(uj0 - mj[0], uj1 - mj[1], uj2 - mj[2], precisions[j])
            best = min(best, ai * fi + (1.0 - ai) * fj)  # Eq. 16
        score[p] = best


# --------------------------------------------------------------------- estimation


def _gradient_magnitude(image, gradient):
    if gradient == "sobel":
        # Koyama: unnormalised 3×3 Sobel on the Rec. 709 luminance, replicate border.
        luma = image @ np.array([0.2126, 0.7152, 0.0722])
        return np.hypot(sobel(luma, axis=0, mode="nearest"), sobel(luma, axis=1, mode="nearest"))
    if gradient == "laplacian":
        # V-SENSE: the norm of the per-channel Laplacian.
        lap = np.stack([laplace(image[:, :, c], mode="nearest") for c in range(3)], axis=2)
        return np.sqrt(np.sum(lap * lap, axis=2))
    raise ValueError(f"gradient must be 'sobel' or 'laplacian', got {gradient!r}")


def _kernel_weights(grey, mean, var, seed, radius, eps):
    """He et al.'s guided-filter kernel W(s, j) (Eq. 11) for j around the seed s.

    ``W(s, j) = Σ_{k: s, j ∈ ω_k} [1 + (I_s − m_k)(I_j − m_k) / (σ_k² + ε)]``
    over the windows ω_k of radius ``radius`` centred on image pixels k
    (window statistics with replicate borders, as the guided filter's box
    filter), for j in the square of radius ``radius`` around s (clipped to the
    image). Negative weights are set to 0 and the weights normalised (spec §2).
    Returns the weights and the (rows, cols) slices of the neighbourhood.
    """
    height, width = grey.shape
    sy, sx = seed
    rows = slice(max(sy - radius, 0), min(sy + radius + 1, height))
    cols = slice(max(sx - radius, 0), min(sx + radius + 1, width))
    # Window centres k containing s are the same square around s.
    a = (grey[sy, sx] - mean[rows, cols]) / (var[rows, cols] + eps)  # per k
    ky, kx = np.mgrid[rows, cols]
    jy, jx = ky.ravel(), kx.ravel()
    # member[j, k]: j lies in ω_k (s does for every k here).
    member = ((np.abs(jy[:, None] - jy[None]) <= radius)
              & (np.abs(jx[:, None] - jx[None]) <= radius))
    m = mean[rows, cols].ravel()
    a = a.ravel()
    weights = member @ (1.0 - a * m) + grey[rows, cols].ravel() * (member @ a)
    weights = np.maximum(weights, 0.0)
    total = weights.sum()
    if total <= 0:  # a degenerate window: fall back to the plain mean
        weights = np.ones_like(weights)
        total = weights.size
    return (weights / total).reshape(ky.shape), rows, cols


def estimate_color_models(image, n_models=None, tau=5.0, well_fraction=0.995, max_models=20,
                          radius=10, kernel_eps=0.01, cov_reg=1e-3, gradient="sobel",
                          projected_distance="marginal"):
    """Estimate the colour models of an image: Aksoy et al. 2017 §5 (spec §2).

    Models are added one at a time. Each round, every pixel not yet well
    represented (representation score r ≥ τ², :func:`representation_score`)
    votes for its RGB bin (10×10×10) with weight ``exp(−|∇c|)·(1 − exp(−r))``
    (paper Eq. 10): badly represented pixels in flat regions. In the most
    voted bin, the seed is the pixel with the most same-bin unrepresented
    neighbours (radius 10) weighted by ``exp(−|∇c|)``; the new model is the
    mean and covariance of the seed's neighbourhood, weighted by the
    guided-filter kernel on the grey image (He et al. Eq. 11), plus
    ``cov_reg · I₃``.

    Parameters
    ----------
    image : array_like, shape (H, W, 3)
    n_models : int, optional
        Estimate this many models (≥ 2), ignoring the stopping rule; fewer,
        with a warning in the log, if every pixel is well represented
        (r < τ²) first. By default the stopping rule decides.
    tau : float, optional
        τ: a pixel is well represented when r < τ² (5, Koyama; V-SENSE 13).
    well_fraction : float, optional
        Stop when more than this fraction of pixels is well represented (0.995).
    max_models : int, optional
        Stop at this many models (20; ``unmix``'s guard).
    radius : int, optional
        Radius of the seed neighbourhood and of the kernel's windows (10).
    kernel_eps : float, optional
        ε of the guided-filter kernel (0.01).
    cov_reg : float, optional
        Multiple of I₃ added to each covariance (1e-3, Koyama; not in the
        paper); 0 is allowed, but flat regions then give singular models.
    gradient : {"sobel", "laplacian"}, optional
        ``|∇c|``: Sobel magnitude of the Rec. 709 luminance (Koyama, default) or
        the norm of the per-channel Laplacian (V-SENSE).
    projected_distance : {"marginal", "full3d"}, optional
        See :func:`representation_score`.

    Returns
    -------
    ColorModels

    Examples
    --------
    >>> from unmix.color import estimate_color_models
    >>> from unmix.image import example_image
    >>> models = estimate_color_models(example_image("coffee", (48, 64)))
    >>> models.n_models, models.means.shape, models.covariances.shape
    (3, (3, 3), (3, 3, 3))
    """
    image = as_float_image(image)
    tau = positive("tau", tau)
    well_fraction = real("well_fraction", well_fraction, 0.0, 1.0, low_open=True)
    if n_models is not None:
        max_models = integer("n_models", n_models, 2)
    max_models = integer("max_models", max_models, 2)
    radius = integer("radius", radius, 1, 2**15 - 1)  # the box side 2r + 1 fits the filters
    kernel_eps = positive("kernel_eps", kernel_eps)
    cov_reg = real("cov_reg", cov_reg, 0.0)
    choice("gradient", gradient, ("sobel", "laplacian"))
    choice("projected_distance", projected_distance, ("marginal", "full3d"))

    height, width = image.shape[:2]
    colors = image.reshape(-1, 3)
    flatness = np.exp(-_gradient_magnitude(image, gradient)).reshape(-1)
    bins = np.minimum((image * 10).astype(np.intp), 9)
    bins = (bins[:, :, 0] * 100 + bins[:, :, 1] * 10 + bins[:, :, 2]).reshape(-1)
    grey = image.mean(axis=2)
    window = 2 * radius + 1
    grey_mean = box_filter(grey, window)
    grey_var = np.maximum(box_filter(grey * grey, window) - grey_mean**2, 0.0)

    means, covs = [], []
    score = np.full(colors.shape[0], np.inf)
    well = np.zeros(colors.shape[0], dtype=bool)
    while len(means) < max_models:
        if means:
            # Scores only fall as models are added: update them with the newest.
            _update_score(colors, np.array(means), np.array(covs), len(means) - 1, score,
                          projected_distance)
            well |= score < tau * tau
        if n_models is None and well.mean() > well_fraction:
            break
        open_ = ~well
        if not open_.any():  # only with n_models: the stopping rule stops first otherwise
            warnings.warn(f"every pixel is well represented by {len(means)} colour models; "
                          f"returning {len(means)} instead of n_models = {max_models}",
                          DegenerateInputWarning, stacklevel=2)
            break
        votes = np.bincount(bins[open_], weights=flatness[open_] * -np.expm1(-score[open_]),
                            minlength=1000)
        best_bin = int(np.argmax(votes))
        candidates = (bins == best_bin) & open_
        counts = uniform_filter(candidates.reshape(height, width).astype(np.float64), window,
                                mode="constant").reshape(-1)
        seed = int(np.argmax(np.where(candidates, counts * flatness, -1.0)))
        weights, rows, cols = _kernel_weights(grey, grey_mean, grey_var, divmod(seed, width),
                                              radius, kernel_eps)
        patch = image[rows, cols]
        mean = np.einsum("yx,yxc->c", weights, patch)
        diff = patch - mean
        cov = np.einsum("yx,yxc,yxd->cd", weights, diff, diff) + cov_reg * np.eye(3)
        mean = np.clip(mean, 0.0, 1.0)
        if any(np.abs(mean - known).max() < 1e-9 for known in means):
            # The seed's neighbourhood averages to a model's colour (e.g. both clipped to
            # black): the model would add nothing, and the next vote would pick it again.
            warnings.warn(f"the next colour model would repeat the colour "
                          f"{np.round(mean, 4).tolist()} of an earlier one; returning "
                          f"{len(means)} models", DegenerateInputWarning, stacklevel=2)
            break
        means.append(mean)
        covs.append(cov)
        log.info("colour model %d: mean %s from seed %s, %.1f%% well represented",
                 len(means), np.round(mean, 3).tolist(), divmod(seed, width), 100 * well.mean())
    if len(means) < 2:
        advice = ("lower tau (SoftColorSegmentationParams.tau in soft_color_segments) to "
                  "separate finer differences, or pass a palette" if n_models is not None else
                  "ask for a number of models (n_models; n_layers in soft_color_segments), "
                  "lower tau, or pass a palette")
        raise ValueError(
            f"the image is represented by a single colour model (every pixel lies within "
            f"tau = {tau:g} of its mean {np.round(means[0], 4).tolist()}): at this tau it has "
            f"no second colour to separate; {advice}")
    return ColorModels(np.array(means), np.array(covs))
