"""Exceptions and warnings shared by all of ``unmix``."""

__all__ = ["ConvergenceWarning"]


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped before reaching its tolerance.

    The solver that emits it still returns its best iterate together with the
    achieved residual (see DESIGN.md §3, "Errors"); the warning message states
    that residual and the tolerance that was asked for, so the caller can decide
    whether the result is usable.
    """
