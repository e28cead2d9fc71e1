"""Exceptions and warnings shared by all of ``unmix``."""

__all__ = ["ConvergenceWarning", "InsufficientMemoryError"]


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped before reaching its tolerance.

    The solver that emits it still returns its best iterate together with the
    achieved residual (see DESIGN.md §3, "Errors"); the warning message states
    that residual and the tolerance that was asked for, so the caller can decide
    whether the result is usable.
    """


class InsufficientMemoryError(MemoryError):
    """A run would need more memory than the system has available.

    Raised before the work starts (nothing large has been allocated); the message
    says how much is needed, how much is available, and what to do instead.
    """
