"""Refusing work that would not fit in memory, before anything large is allocated.

Each entry point estimates its peak memory from the image size with the per-pixel
costs its benchmark measured (``benchmarks/README.md``), and compares it with the
memory the system has available (``MemAvailable`` of ``/proc/meminfo``; psutil
elsewhere, where installed). A run that cannot fit raises
:class:`~unmix.exceptions.InsufficientMemoryError` up front instead of a NumPy
allocation error deep inside a stage, or swapping. Where the available memory cannot
be read, nothing is refused.
"""

import numpy as np

from .exceptions import InsufficientMemoryError

GiB = 2**30


def available_bytes():
    """The memory available to a new allocation, in bytes, or None where unknown."""
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def check_memory(needed, what, advice):
    """Raise :class:`InsufficientMemoryError` if ``needed`` bytes exceed what is available.

    Parameters
    ----------
    needed : float
        The estimated peak, in bytes.
    what : str
        The work, as the message names it ("semantic_soft_segments of a 30000×30000 image").
    advice : str
        What the caller can do instead.
    """
    available = available_bytes()
    if available is not None and needed > available:
        raise InsufficientMemoryError(
            f"{what} needs about {needed / GiB:.1f} GiB of memory, but {available / GiB:.1f} GiB "
            f"is available; {advice}")


def image_pixels(image):
    """(H, W) of an image-like input without converting it (a list, an array, a view)."""
    try:
        shape = np.shape(image)
    except ValueError:  # a ragged sequence: as_float_image says what is wrong with it
        return None
    return (int(shape[0]), int(shape[1])) if len(shape) >= 2 else None


__all__ = ["available_bytes", "check_memory", "image_pixels"]
