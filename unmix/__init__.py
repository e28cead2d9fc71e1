"""unmix: decompose an image into soft layers.

Soft layers are opacity mattes that sum to one at every pixel, ready for
image editing and compositing. The library implements the classical methods
exactly and fast, stage by stage:

- :mod:`unmix.graph`: the graph of semantic soft segmentation (matting
  Laplacian, superpixels, semantic and non-local colour affinities);
- :mod:`unmix.spectral`: from the graph to layers (smallest eigenpairs, ...);
- :mod:`unmix.image`: input validation and image files.

``import unmix`` compiles nothing and never imports torch or CuPy.
"""

__version__ = "0.1.0.dev0"

from . import graph, image, spectral
from .exceptions import ConvergenceWarning
from .image import as_float_image, read_image, write_image
from .layers import Layers

__all__ = [
    "ConvergenceWarning",
    "Layers",
    "as_float_image",
    "graph",
    "image",
    "read_image",
    "spectral",
    "write_image",
]
