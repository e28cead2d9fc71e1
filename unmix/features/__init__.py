"""Per-pixel features for semantic soft segmentation (spec ``sss.md`` §2–3)."""

from .handcrafted import handcrafted_features
from .interface import feature_image
from .preprocess import pca_features, preprocess_features

__all__ = ["feature_image", "handcrafted_features", "pca_features", "preprocess_features"]
