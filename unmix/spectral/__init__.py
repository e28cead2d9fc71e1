"""From the graph to layers: eigenpairs, sparsification, grouping (spec §9–§12)."""

from .eigen import smallest_eigenpairs

__all__ = ["smallest_eigenpairs"]
