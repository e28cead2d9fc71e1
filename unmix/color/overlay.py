"""Alpha-add layers as a normal-blend ("overlay") stack, and back (spec ``color.md`` §0.1).

Soft colour segmentation composites its layers by addition, c = Σ_i α_i u_i,
with no order. Layer-based editors (Photoshop, GIMP, Krita) instead stack
layers with the normal blend, each over the composite of those below. With
the layers ordered 0 (bottom) … K−1 (top) and S_i = Σ_{j≤i} α_j, the stack

    a_0 = 1,    a_i = α_i / S_i,    colours unchanged

composites to the same image (Koyama's ``convert_alpha_add_to_overlay``).
The inverse is α_i = a_i Π_{j>i} (1 − a_j): since 1 − a_j = S_{j−1} / S_j,
the product telescopes to S_i / S_{K−1}, so the round trip is exact when the
alphas sum to one.
"""

import numpy as np

from .._checks import real_array

__all__ = ["from_overlay", "to_overlay"]

#: Below this cumulative alpha a layer has nothing beneath it to blend over.
_EMPTY = 1e-16


def _stack(alphas, name):
    arr = real_array(alphas, name)
    if arr.ndim < 1 or arr.shape[-1] < 1:
        raise ValueError(f"{name} must be a finite array with layers on the last axis, "
                         f"got shape {arr.shape}")
    if arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"{name} must lie in [0, 1] (clip and renormalise first: negative "
                         f"alphas cannot be exported), got values in [{arr.min():.6g}, {arr.max():.6g}]")
    return arr


def to_overlay(alphas):
    """Opacities of the normal-blend stack equivalent to alpha-add layers.

    Parameters
    ----------
    alphas : array_like, shape (..., K)
        Alpha-add alphas in [0, 1] summing to one, layer 0 at the bottom.

    Returns
    -------
    opacities : ndarray, shape (..., K)
        a_0 = 1 and a_i = α_i / Σ_{j≤i} α_j (1 where that sum is below 1e-16).
        Each layer keeps its colour.

    Examples
    --------
    A quarter of layer 0 under three quarters of layer 1, as a normal-blend
    stack (layer 0 at the bottom, opaque):

    >>> import numpy as np
    >>> from unmix.color import to_overlay
    >>> to_overlay(np.array([[[0.25, 0.75]]]))
    array([[[1.  , 0.75]]])
    """
    alphas = _stack(alphas, "alphas")
    cumulative = np.cumsum(alphas, axis=-1)
    opacities = np.divide(alphas, cumulative, out=np.ones_like(alphas), where=cumulative >= _EMPTY)
    opacities[..., 0] = 1.0
    return np.clip(opacities, 0.0, 1.0)


def from_overlay(opacities):
    """Alpha-add alphas of a normal-blend stack: α_i = a_i Π_{j>i} (1 − a_j).

    Parameters
    ----------
    opacities : array_like, shape (..., K)
        Layer opacities in [0, 1], layer 0 at the bottom.

    Returns
    -------
    alphas : ndarray, shape (..., K)
        They sum to one when the bottom layer is opaque.

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.color import from_overlay
    >>> from_overlay(np.array([[[1.0, 0.75]]]))
    array([[[0.25, 0.75]]])
    """
    opacities = _stack(opacities, "opacities")
    transmitted = np.cumprod((1.0 - opacities)[..., ::-1], axis=-1)[..., ::-1]
    above = np.concatenate([transmitted[..., 1:], np.ones_like(transmitted[..., :1])], axis=-1)
    return opacities * above
