"""Exceptions and warnings shared by all of ``unmix``.

Bad arguments raise the built-in :class:`TypeError` (wrong type) or
:class:`ValueError` (right type, impossible value), with a message that names
the public argument, what was received and what is expected. Everything else
unmix raises on purpose derives from :class:`UnmixError`, and also from the
built-in type a caller would catch for that kind of failure (``OSError`` for
files, ``MemoryError`` for memory, ``ImportError`` for a missing extra), so
that ``except OSError`` and ``except unmix.exceptions.UnmixError`` both work.
"""

__all__ = [
    "ConvergenceWarning",
    "DegenerateInputWarning",
    "GPUUnavailableError",
    "ImageFileError",
    "ImageNotFoundError",
    "ImageReadError",
    "ImageWriteError",
    "InsufficientMemoryError",
    "UnmixError",
]


class UnmixError(Exception):
    """Base class of the errors unmix raises for reasons other than a bad argument."""


class ImageFileError(UnmixError, OSError):
    """An image file cannot be read or written; the message names the path and the fix."""


class ImageReadError(ImageFileError, ValueError):
    """A file is missing, is not an image, or holds an image unmix does not accept.

    Also a :class:`ValueError`, since the file's content is the bad input.
    """


class ImageNotFoundError(ImageReadError, FileNotFoundError):
    """An input image file does not exist."""


class ImageWriteError(ImageFileError):
    """An output file cannot be written: missing or read-only folder, a folder in
    its place, or a format that cannot hold the image (e.g. RGBA as JPEG).

    Nothing is left at the path (outputs are written to a temporary name and
    renamed when complete), and a file that was there before is unchanged.
    """


class InsufficientMemoryError(UnmixError, MemoryError):
    """A run would need more memory than the system has available.

    Raised before the work starts (nothing large has been allocated); the message
    says how much is needed, how much is available, and what to do instead.
    """


class GPUUnavailableError(UnmixError, ImportError):
    """``device="gpu"`` was asked for, but CuPy or a CUDA device is missing."""


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped before reaching its tolerance.

    The solver that emits it still returns its best iterate together with the
    achieved residual (see DESIGN.md §3, "Errors"); the warning message states
    that residual and the tolerance that was asked for, so the caller can decide
    whether the result is usable.
    """


class DegenerateInputWarning(UserWarning):
    """The input supports fewer layers than were asked for, and fewer are returned.

    E.g. a constant image, or a segment count above what the image's structure
    supports. The message says why and how many layers the result has.
    """
