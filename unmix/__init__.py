"""unmix: decompose an image into soft layers.

Soft layers are opacity mattes that sum to one at every pixel, ready for
image editing and compositing. The library implements the classical methods
exactly and fast, stage by stage:

- :mod:`unmix.graph`: the graph of semantic soft segmentation (matting
  Laplacian, superpixels, semantic and non-local colour affinities);
- :mod:`unmix.spectral`: from the graph to layers (smallest eigenpairs,
  constrained and relaxed sparsification, grouping), and
  :func:`semantic_soft_segments`, the whole method in one call;
- :mod:`unmix.features`: the per-pixel features it accepts;
- :mod:`unmix.color`: soft colour segmentation (Aksoy et al. 2017), layers
  of homogeneous colour that add up to the image
  (:func:`soft_color_segments`);
- :mod:`unmix.matting`: natural matting with a trimap
  (:func:`closed_form_matting`), layer colours for compositing
  (:func:`estimate_layer_colors`), trimaps from mattes and soft segments;
- :mod:`unmix.metrics`: the matting errors of the Deep Image Matting
  evaluation code (SAD, MSE, Gradient, Connectivity);
- :mod:`unmix.nets`: PyTorch plug-ins, with the ``torch`` extra: Fast
  Soft Color Segmentation with the authors' weights, feature extractors
  for :func:`semantic_soft_segments`, matting networks;
- :mod:`unmix.linalg`: the solvers underneath (PCG, multifrontal
  factorisation, block Krylov–Schur);
- :func:`batch` (:mod:`unmix.batching`): folders and videos, in parallel
  on Dask with the ``distributed`` extra, resumable;
- :mod:`unmix.image`: input validation and image files;
  :class:`Layers` and :func:`composite` hold and composite the results.

Submodules are imported on first use, so ``import unmix`` is cheap; it
compiles nothing and never imports torch or CuPy.
"""

import importlib

__version__ = "0.1.0.dev0"

_SUBMODULES = ("batching", "color", "exceptions", "features", "filters", "graph", "image",
               "layers", "linalg", "matting", "metrics", "nets", "spectral")

#: Public names of the top level, and the submodule that defines each.
_EXPORTS = {
    "ConvergenceWarning": "exceptions",
    "DegenerateInputWarning": "exceptions",
    "InsufficientMemoryError": "exceptions",
    "UnmixError": "exceptions",
    "Layers": "layers",
    "SemanticSoftSegmentationParams": "spectral",
    "as_float_image": "image",
    "batch": "batching",
    "closed_form_matting": "matting",
    "composite": "layers",
    "estimate_foreground": "matting",
    "estimate_layer_colors": "matting",
    "read_image": "image",
    "semantic_soft_segments": "spectral",
    "soft_color_segments": "color",
    "write_image": "image",
}

__all__ = sorted([*_EXPORTS, *_SUBMODULES])


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'unmix' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
