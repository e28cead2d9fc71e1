"""From the graph to soft layers: eigenpairs and the sparsification stages."""

from .constrained import constrained_sparsification, kmeans_init, prune_schedule
from .eigen import eigen_residuals, smallest_eigenpairs
from .grouping import group_segments, segment_mean_features
from .pipeline import SemanticSoftSegmentationParams, semantic_soft_segments
from .relaxed import relaxed_energy, relaxed_sparsification, sparsity_exponent

__all__ = [
    "SemanticSoftSegmentationParams",
    "constrained_sparsification",
    "eigen_residuals",
    "group_segments",
    "kmeans_init",
    "prune_schedule",
    "relaxed_energy",
    "relaxed_sparsification",
    "segment_mean_features",
    "semantic_soft_segments",
    "smallest_eigenpairs",
    "sparsity_exponent",
]
