"""From the graph to soft layers: eigenpairs and the sparsification stages."""

from .eigen import eigen_residuals, smallest_eigenpairs
from .grouping import group_segments, segment_mean_features
from .relaxed import relaxed_energy, relaxed_sparsification, sparsity_exponent

__all__ = [
    "eigen_residuals",
    "group_segments",
    "relaxed_energy",
    "relaxed_sparsification",
    "segment_mean_features",
    "smallest_eigenpairs",
    "sparsity_exponent",
]
