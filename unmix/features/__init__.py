"""Per-pixel features for semantic soft segmentation (spec ``sss.md`` §2–3)."""

from .preprocess import pca_features, preprocess_features

__all__ = ["pca_features", "preprocess_features"]
