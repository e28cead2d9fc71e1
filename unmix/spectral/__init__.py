"""From the graph to soft layers: eigenpairs and the sparsification stages."""

from .eigen import eigen_residuals, smallest_eigenpairs
from .grouping import group_segments, segment_mean_features

__all__ = ["eigen_residuals", "group_segments", "segment_mean_features", "smallest_eigenpairs"]
