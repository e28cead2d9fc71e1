"""Per-pixel features for semantic soft segmentation (spec ``sss.md`` §2–3)."""

from ._pth import read_state_dict
from .handcrafted import handcrafted_features
from .interface import feature_image
from .network import network_features
from .preprocess import pca_features, preprocess_features

__all__ = ["feature_image", "handcrafted_features", "network_features", "pca_features",
           "preprocess_features", "read_state_dict"]
