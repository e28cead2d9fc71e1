"""Trimaps: parsing the user's, and making them from mattes and soft segments.

A trimap marks every pixel as definite foreground (α = 1), definite background
(α = 0) or unknown (``spec/matting.md`` §1.2). Two conventions are in use and
both are accepted:

- **floats in [0, 1]** (pymatting's): foreground where t ≥ 0.9, background
  where t ≤ 0.1, unknown in between;
- **uint8 {0, 128, 255}** (Deep Image Matting's, the files of the matting
  benchmarks): divided by 255 first, then as above.

The trimaps this module makes are uint8 {0, 128, 255}, the convention the
matting metrics of :mod:`unmix.metrics` evaluate on (unknown == 128).
"""

import warnings

import numpy as np

from .._checks import as_array, real, real_array

__all__ = ["split_trimap", "trimap_from_alpha", "trimap_from_segment"]

#: uint8 values of the trimaps made here (the DIM convention).
BACKGROUND, UNKNOWN, FOREGROUND = 0, 128, 255


def _trimap_values(trimap, name="trimap"):
    """The trimap as float64 (H, W) values on the [0, 1] scale."""
    arr = as_array(trimap, name)
    if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        # A trimap read from an RGB(A) file: its channels are equal; take the
        # first, as the DIM evaluation code does (``trimap(:,:,1)``).
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (H, W) (or (H, W, C) with equal channels), "
                         f"got shape {np.shape(trimap)}")
    values = real_array(arr, name)
    if arr.dtype == np.uint8:
        return values / 255.0
    if arr.dtype == np.uint16:
        return values / 65535.0
    if np.issubdtype(arr.dtype, np.integer):
        # E.g. a list of Python ints {0, 128, 255}: only the 8-bit reading makes sense.
        warnings.warn(f"{name} has integer dtype {arr.dtype}; reading it as 8-bit values "
                      "(0..255). Pass uint8, or floats in [0, 1]", UserWarning, stacklevel=3)
        return values / 255.0
    if arr.dtype != bool and (values.min() < 0.0 or values.max() > 1.0):
        warnings.warn(f"{name} has floating-point values in [{values.min():.6g}, "
                      f"{values.max():.6g}], outside [0, 1]; 8-bit data must be passed as "
                      "uint8", UserWarning, stacklevel=3)
    return values


def _check_thresholds(fg_threshold, bg_threshold):
    fg_threshold = real("fg_threshold", fg_threshold, 0.0, 1.0)
    bg_threshold = real("bg_threshold", bg_threshold, 0.0, 1.0)
    if not bg_threshold < fg_threshold:
        raise ValueError("thresholds must satisfy 0 <= bg_threshold < fg_threshold <= 1, "
                         f"got bg_threshold={bg_threshold!r}, fg_threshold={fg_threshold!r}")
    return fg_threshold, bg_threshold


def _split_values(values, fg_threshold, bg_threshold, shape):
    """:func:`split_trimap` of values already on the [0, 1] scale (thresholds checked)."""
    if shape is not None and values.shape != tuple(shape):
        raise ValueError(f"trimap must have the image's shape {tuple(shape)}, "
                         f"got {values.shape}")
    foreground = values >= fg_threshold
    background = values <= bg_threshold
    for mask, what, rule in ((foreground, "foreground", f">= {fg_threshold}"),
                             (background, "background", f"<= {bg_threshold}")):
        if not mask.any():
            raise ValueError(f"trimap has no {what} pixel (value {rule} on the [0, 1] scale; "
                             f"uint8 trimaps are divided by 255), got values in "
                             f"[{values.min():.6g}, {values.max():.6g}]")
    return foreground, background, ~(foreground | background)


def split_trimap(trimap, *, fg_threshold=0.9, bg_threshold=0.1, shape=None):
    """Foreground, background and unknown masks of a trimap.

    Parameters
    ----------
    trimap : array_like, shape (H, W) or (H, W, C)
        ``uint8`` (0 / 128 / 255, divided by 255), ``uint16`` (divided by
        65535) or floats in [0, 1]. Colour trimaps use their first channel.
    fg_threshold, bg_threshold : float, optional
        Foreground where t ≥ ``fg_threshold`` (default 0.9), background where
        t ≤ ``bg_threshold`` (default 0.1), on the [0, 1] scale: pymatting's
        ``trimap_split`` thresholds.
    shape : tuple of int, optional
        The ``(H, W)`` the trimap must have (the image's).

    Returns
    -------
    foreground, background, unknown : ndarray of bool, shape (H, W)
        A partition of the pixels.

    Raises
    ------
    ValueError
        If the shape is wrong, a value is NaN, the thresholds are not
        ``0 <= bg_threshold < fg_threshold <= 1``, or there is no
        foreground or no background pixel (the alpha would be undetermined).

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.matting import split_trimap
    >>> foreground, background, unknown = split_trimap(np.array([[0, 128, 255]], np.uint8))
    >>> foreground, background, unknown
    (array([[False, False,  True]]), array([[ True, False, False]]), array([[False,  True, False]]))
    """
    fg_threshold, bg_threshold = _check_thresholds(fg_threshold, bg_threshold)
    return _split_values(_trimap_values(trimap), fg_threshold, bg_threshold, shape)


def _erode(mask, band):
    """``mask`` eroded by a disk of radius ``band`` (pixels farther than ``band``
    from every pixel outside it; the image border does not erode)."""
    if band == 0 or not mask.any() or mask.all():
        return mask
    from scipy.ndimage import distance_transform_edt

    return distance_transform_edt(mask) > band


def _make_trimap(alpha, band, fg_threshold, bg_threshold):
    band = real("band (pixels)", band, 0.0)
    fg_threshold, bg_threshold = _check_thresholds(fg_threshold, bg_threshold)
    trimap = np.full(alpha.shape, UNKNOWN, dtype=np.uint8)
    trimap[_erode(alpha >= fg_threshold, band)] = FOREGROUND
    trimap[_erode(alpha <= bg_threshold, band)] = BACKGROUND
    return trimap


def trimap_from_alpha(alpha, band=10, *, fg_threshold=1 - 0.5 / 255, bg_threshold=0.5 / 255):
    """A trimap whose unknown region covers the soft part of a matte and a band around it.

    Definite foreground is where α is opaque, eroded by a disk of radius
    ``band``; definite background where α is transparent, eroded likewise;
    the rest is unknown. This is how matting benchmarks make test trimaps
    from ground-truth mattes (with the band as the unknown-region width).

    Parameters
    ----------
    alpha : array_like, shape (H, W)
        The matte: floats in [0, 1] or ``uint8`` (divided by 255).
    band : float, optional
        Radius in pixels of the disk the opaque and transparent regions are
        eroded by (default 10); 0 leaves exactly the fractional pixels unknown.
    fg_threshold, bg_threshold : float, optional
        Opaque where α ≥ ``fg_threshold``, transparent where α ≤
        ``bg_threshold``. The defaults are half an 8-bit step from 1 and 0:
        the values an 8-bit matte stores as 255 and 0.

    Returns
    -------
    trimap : ndarray of uint8, shape (H, W)
        0 (background), 128 (unknown) and 255 (foreground).

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.matting import trimap_from_alpha
    >>> alpha = np.clip(np.linspace(-1, 2, 9), 0, 1)[None].repeat(3, axis=0)
    >>> trimap_from_alpha(alpha, band=1)[0]
    array([  0,   0, 128, 128, 128, 128, 128, 255, 255], dtype=uint8)
    """
    values = _trimap_values(alpha, name="alpha")
    return _make_trimap(values, band, fg_threshold, bg_threshold)


def trimap_from_segment(segments, index, band=5, *, fg_threshold=0.9, bg_threshold=0.1):
    """A trimap for natural matting from chosen soft segments (SSS paper §4.2, Fig. 11f).

    The selected layers are summed (after clipping each to [0, 1]) into one
    matte, which is thresholded into definite foreground and background;
    both are then eroded by a disk of radius ``band`` so that the unknown
    region covers the soft transitions with a margin.

    Parameters
    ----------
    segments : Layers or array_like, shape (H, W, K)
        Soft segments (e.g. from :func:`unmix.semantic_soft_segments`).
    index : int or sequence of int
        The layer(s) that form the foreground.
    band : float, optional
        Erosion radius in pixels (default 5).
    fg_threshold, bg_threshold : float, optional
        Foreground where the summed matte is ≥ ``fg_threshold`` (default
        0.9), background where it is ≤ ``bg_threshold`` (default 0.1).
        Soft segments are not clamped and carry small noise, hence looser
        thresholds than :func:`trimap_from_alpha`'s.

    Returns
    -------
    trimap : ndarray of uint8, shape (H, W)
        0 / 128 / 255.

    Examples
    --------
    A trimap for layer 0 of two soft layers that cross the image:

    >>> import numpy as np
    >>> from unmix.matting import trimap_from_segment
    >>> x = np.tile(np.linspace(1.0, 0.0, 12), (4, 1))
    >>> segments = np.dstack([x, 1.0 - x])
    >>> trimap_from_segment(segments, 0, band=1)[0]
    array([255, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,   0], dtype=uint8)
    """
    alphas = real_array(getattr(segments, "alphas", segments), "segments")
    if alphas.ndim != 3:
        raise ValueError(f"segments must be Layers or an (H, W, K) array, got shape {alphas.shape}")
    picked = np.atleast_1d(as_array(index, "index"))
    if picked.size == 0 or not np.issubdtype(picked.dtype, np.integer) \
            or picked.min() < -alphas.shape[2] or picked.max() >= alphas.shape[2]:
        raise ValueError(f"index must name layers among the {alphas.shape[2]}, got {index!r}")
    alpha = np.clip(alphas[:, :, picked], 0.0, 1.0).sum(axis=2)
    return _make_trimap(alpha, band, fg_threshold, bg_threshold)
