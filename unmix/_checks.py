"""Argument checks shared by the stages (errors name the argument, value and expectation)."""

import math
import numbers
from dataclasses import fields

import numpy as np


def positive(name, value):
    """``value`` as a float, checked to be a real, finite, positive number."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def real_array(x, name, ndims=None):
    """``x`` as a float64 array after checking it is real, numeric, non-empty and finite.

    ``ndims``, if given, is the tuple of accepted numbers of dimensions.
    """
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.issubdtype(
        arr.dtype, np.complexfloating
    ):
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if ndims is not None and arr.ndim not in ndims:
        raise ValueError(
            f"{name} must have {' or '.join(map(str, ndims))} dimensions, got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains {np.count_nonzero(~np.isfinite(arr))} NaN or infinite values")
    return arr


def feature_array(features, shape, name="features"):
    """A per-pixel feature image: float64 ``(H, W, D)`` with ``(H, W) = shape``, finite."""
    arr = np.asarray(features)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[:2] != tuple(shape) or arr.shape[2] < 1:
        raise ValueError(
            f"{name} must have shape (H, W, D) with (H, W) = {tuple(shape)}, "
            f"got shape {np.shape(features)}"
        )
    return real_array(arr, name)


def grid_shape(shape, n, name="shape"):
    """``(H, W)`` as ints, checked against ``n`` row-major pixels (p = y·W + x)."""
    try:
        height, width = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (H, W) of integers, got {shape!r}") from None
    if height < 1 or width < 1 or height * width != n:
        raise ValueError(f"{name} must be (H, W) with H·W = N = {n} (row-major pixels), got {shape!r}")
    return height, width


def positive_fields(params, exclude=()):
    """Check that every field of a parameter dataclass, but ``exclude``, is positive and finite."""
    for f in fields(params):
        if f.name in exclude:
            continue
        positive(f.name, getattr(params, f.name))
