"""Natural matting: alpha from a trimap, layer colours, trimaps.

- :func:`closed_form_matting`: Levin's closed-form matting on the unknown
  pixels of a trimap (``spec/matting.md`` §1).
- :func:`estimate_layer_colors`, :func:`estimate_foreground`: the colour of
  each layer given its alpha, for compositing (§2).
- :func:`split_trimap`, :func:`trimap_from_alpha`, :func:`trimap_from_segment`:
  trimap conventions, and trimaps made from mattes and soft segments.

Compositing is :func:`unmix.layers.composite`; the matting metrics are in
:mod:`unmix.metrics`.
"""

from .closed_form import MattingInfo, closed_form_matting
from .colors import estimate_foreground, estimate_layer_colors
from .trimap import split_trimap, trimap_from_alpha, trimap_from_segment

__all__ = [
    "MattingInfo",
    "closed_form_matting",
    "estimate_foreground",
    "estimate_layer_colors",
    "split_trimap",
    "trimap_from_alpha",
    "trimap_from_segment",
]
