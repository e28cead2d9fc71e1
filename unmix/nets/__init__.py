"""Pluggable PyTorch modules: FSCS, feature extractors and matting networks.

unmix is classical; this package lets networks sit next to it. It needs the
``torch`` extra (``pip install 'unmix[torch]'``), and it is the only place
that imports torch, on first use of one of its names:

- :mod:`unmix.nets.fscs`: Fast Soft Color Segmentation (Akimoto et al.,
  CVPR 2020) with the authors' released weights: :func:`load_fscs`,
  :func:`fscs_segments` (→ :class:`unmix.Layers`), :func:`kmeans_palette`;
- :mod:`unmix.nets.extractor`: any ``torch.nn.Module`` that maps an image to
  per-pixel embeddings, as the ``features`` of
  :func:`unmix.semantic_soft_segments` (:class:`TorchFeatureExtractor`,
  :func:`load_feature_extractor`);
- :mod:`unmix.nets.sss_features`: the SSS authors' semantic feature network
  (spec ``sss.md`` §15), for users who hold its weights
  (:class:`SSSFeatureNet`, :func:`load_sss_feature_net`,
  :func:`sss_state_dict_from_tf`); pass it as ``features`` as it is;
- :mod:`unmix.nets.matting`: any image + trimap → alpha network, scored
  like :func:`unmix.closed_form_matting` (:class:`TorchMattingNet`,
  :func:`load_matting_net`).

Modules loaded from files take TorchScript archives, or state_dicts read
with ``torch.load(..., weights_only=True)`` into a given architecture, with
an error that lists every key and shape that does not match.
"""

import importlib

_EXPORTS = {
    "FSCS": "fscs",
    "AlphaPredictor": "fscs",
    "ResiduePredictor": "fscs",
    "fscs_guided_filter": "fscs",
    "fscs_segments": "fscs",
    "kmeans_palette": "fscs",
    "load_fscs": "fscs",
    "TorchFeatureExtractor": "extractor",
    "load_feature_extractor": "extractor",
    "SSSFeatureNet": "sss_features",
    "load_sss_feature_net": "sss_features",
    "sss_state_dict_from_tf": "sss_features",
    "TorchMattingNet": "matting",
    "load_matting_net": "matting",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'unmix.nets' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
