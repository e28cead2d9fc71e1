"""Soft colour segmentation: layers of homogeneous colour that add up to the image.

The unmixing-based method of Aksoy, Aydin, Smolić and Pollefeys (ACM TOG
2017), stage by stage (spec ``color.md``):

- :mod:`~unmix.color.models`: colour models N(μ_i, Σ_i), estimated
  (:func:`estimate_color_models`) or given (:class:`ColorModels`, a palette);
- :mod:`~unmix.color.unmixing`: sparse colour unmixing per pixel
  (:func:`sparse_color_unmixing`: the faithful method of multipliers, or the
  fast reduced solver);
- :mod:`~unmix.color.refine`: matte regularisation and colour refinement;
- :func:`soft_color_segments`: the whole method in one call;
- :mod:`~unmix.color.overlay`: export to normal-blend layer stacks;
- :mod:`~unmix.color.metrics`: blind quality metrics of soft colour layers.
"""

from .metrics import soft_color_metrics
from .models import ColorModels, estimate_color_models, representation_score
from .overlay import from_overlay, to_overlay
from .pipeline import SoftColorSegmentationParams, soft_color_segments
from .refine import matte_radius, refine_colors, regularize_alphas
from .unmixing import closed_form_colors, initial_solution, sparse_color_unmixing, unmixing_energy

__all__ = [
    "ColorModels",
    "SoftColorSegmentationParams",
    "closed_form_colors",
    "estimate_color_models",
    "from_overlay",
    "initial_solution",
    "matte_radius",
    "refine_colors",
    "regularize_alphas",
    "representation_score",
    "soft_color_metrics",
    "soft_color_segments",
    "sparse_color_unmixing",
    "to_overlay",
    "unmixing_energy",
]
