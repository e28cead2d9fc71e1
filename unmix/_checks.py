"""Argument checks shared by the stages (errors name the argument, value and expectation)."""

import math
import numbers
from dataclasses import fields

import numpy as np


def _received(value):
    return f"{value!r} of type {type(value).__name__}"


def integer(name, value, low=None, high=None):
    """``value`` as an ``int``, checked to be an integer (not a bool) in [low, high]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_received(value)}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (f"in [{low}, {high}]" if low is not None and high is not None
                  else f">= {low}" if low is not None else f"<= {high}")
        raise ValueError(f"{name} must be an integer {bounds}, got {value}")
    return value


def real(name, value, low=None, high=None, *, low_open=False, high_open=False):
    """``value`` as a ``float``, checked to be a finite real number (not a bool or a
    string) in the interval from ``low`` to ``high``, open at an end where asked."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_received(value)}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if not math.isfinite(value) or too_low or too_high:
        if low is not None and high is not None:
            bounds = f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low is not None:
            bounds = f" {'>' if low_open else '>='} {low:g}"
        elif high is not None:
            bounds = f" {'<' if high_open else '<='} {high:g}"
        else:
            bounds = ""
        raise ValueError(f"{name} must be a finite number{bounds}, got {value!r}")
    return value


def positive(name, value):
    """``value`` as a float, checked to be a real, finite, positive number."""
    return real(name, value, 0.0, low_open=True)


def flag(name, value):
    """``value`` as a ``bool``, checked to be one (not a number or a string)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_received(value)}")
    return bool(value)


def choice(name, value, options):
    """``value``, checked to be one of ``options`` (strings, or None)."""
    if not any(value is option or (isinstance(value, str) and value == option)
               for option in options):
        expected = ", ".join(repr(option) for option in options)
        raise ValueError(f"{name} must be one of {expected}, got {value!r}")
    return value


def seed(name, value):
    """A random seed: ``None``, an integer in [0, 2³²) or a ``numpy.random.Generator``."""
    if value is None or isinstance(value, np.random.Generator):
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer seed, None or a numpy.random.Generator, "
                        f"got {_received(value)}")
    return integer(name, value, 0, 2**32 - 1)


def as_array(x, name):
    """``np.asarray(x)``, with ragged nested sequences refused by a message naming ``name``."""
    try:
        return np.asarray(x)
    except ValueError:
        raise ValueError(f"{name} must be a rectangular array, got a ragged sequence "
                         f"of type {type(x).__name__}") from None


def real_array(x, name, ndims=None):
    """``x`` as a float64 array after checking it is real, numeric, non-empty and finite.

    ``ndims``, if given, is the tuple of accepted numbers of dimensions.
    """
    arr = as_array(x, name)
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
    arr = as_array(features, name)
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


def symmetric_operator(A, name, xp=np):
    """Check that the square matrix ``A`` is symmetric, on two random vectors.

    Compares uᵀ(A v) with vᵀ(A u): equal up to rounding for a symmetric A,
    different by about ‖A − Aᵀ‖ otherwise. Two matrix-vector products, so
    the check costs no more than one solver iteration; ``xp`` is the array
    module of A's device.
    """
    rng = np.random.default_rng(0)
    u, v = (xp.asarray(rng.standard_normal(A.shape[0])) for _ in range(2))
    Au, Av = A @ u, A @ v
    scale = float(xp.linalg.norm(u) * xp.linalg.norm(Av) + xp.linalg.norm(v) * xp.linalg.norm(Au))
    if abs(float(u @ Av - v @ Au)) > 1e-10 * scale:
        raise ValueError(f"{name} must be symmetric, got a matrix with uᵀ{name}v ≠ vᵀ{name}u "
                         "(relative difference "
                         f"{abs(float(u @ Av - v @ Au)) / max(scale, 1e-300):.2g}) on random "
                         "vectors u, v")


def check_fields(params, bounds=None, exclude=()):
    """Check every field of a parameter dataclass by its annotated type.

    ``int`` fields must be integers and ``float`` fields finite real numbers,
    within ``bounds[name] = (low, high)``, ends included; for floats, a third
    item ``"open"`` excludes both ends and ``"low-open"`` the lower one. Without
    bounds, integers must be >= 1 and floats > 0. ``bool`` fields must be booleans. A field whose default is
    None may be None. Fields of other types, and those in ``exclude``, are left
    to the caller. Messages name the field as ``Class.field``.
    """
    bounds = bounds or {}
    cls = type(params).__name__
    for f in fields(params):
        value = getattr(params, f.name)
        if f.name in exclude or (value is None and f.default is None):
            continue
        name = f"{cls}.{f.name}"
        if f.type is bool:
            flag(name, value)
        elif f.type is int:
            low, high = bounds.get(f.name, (1, None))
            integer(name, value, low, high)
        elif f.type is float:
            low, high, *ends = bounds.get(f.name, (0.0, None, "low-open"))
            ends = ends[0] if ends else "closed"
            real(name, value, low, high, low_open=ends in ("open", "low-open"),
                 high_open=ends == "open")
