"""Argument checks shared by the stages (errors name the argument, value and expectation)."""

from dataclasses import fields

import numpy as np


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
        value = getattr(params, f.name)
        if not (np.isscalar(value) and np.isfinite(value) and value > 0):
            raise ValueError(f"{f.name} must be a positive finite number, got {value!r}")
