"""The graph of semantic soft segmentation: who is like whom.

Stages, each usable on its own (spec ``sss.md`` §4–8):

- :func:`matting_affinity`, :func:`matting_laplacian`: Levin's closed-form
  matting affinity W_L and Laplacian L_M (local, 3×3 windows).
- :func:`superpixels`, :class:`Superpixels`: SLIC0 superpixels, their
  adjacency and centroid pixels.
- :func:`semantic_affinity`: W_S between adjacent superpixels (Eq. 5).
- :func:`color_affinity`: non-local colour affinity W_C (Eq. 4).
- :func:`laplacian`: affinity → Laplacian, unnormalised or normalised (Eq. 3).
- :func:`sss_laplacian`: L = D − (W_L + σ_S W_S + σ_C W_C) (Eq. 6).
"""

from .laplacian import GraphParams, laplacian, sss_laplacian
from .matting import matting_affinity, matting_laplacian
from .superpixel_affinity import color_affinity, semantic_affinity
from .superpixels import Superpixels, superpixels

__all__ = [
    "GraphParams",
    "Superpixels",
    "color_affinity",
    "laplacian",
    "matting_affinity",
    "matting_laplacian",
    "semantic_affinity",
    "sss_laplacian",
    "superpixels",
]
