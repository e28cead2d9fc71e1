"""Iterative linear solvers shared by the methods."""

from .pcg import PCGResult, pcg

__all__ = ["PCGResult", "pcg"]
