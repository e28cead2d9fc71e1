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
    """Base class of the errors unmix raises for reasons other than a bad argument.

    Examples
    --------
    One ``except`` clause catches every error of the library's own:

    >>> import unmix
    >>> from unmix.exceptions import UnmixError
    >>> try:
    ...     unmix.read_image("no-such-photo.png")
    ... except UnmixError as error:
    ...     print(type(error).__name__)
    ImageNotFoundError
    """


class ImageFileError(UnmixError, OSError):
    """An image file cannot be read or written; the message names the path and the fix.

    Examples
    --------
    Reading and writing errors are both image-file errors, and both are ``OSError``:

    >>> from unmix.exceptions import ImageFileError, ImageReadError, ImageWriteError
    >>> issubclass(ImageReadError, ImageFileError), issubclass(ImageWriteError, OSError)
    (True, True)
    """


class ImageReadError(ImageFileError, ValueError):
    """A file is missing, is not an image, or holds an image unmix does not accept.

    Also a :class:`ValueError`, since the file's content is the bad input.

    Examples
    --------
    A file that is not an image:

    >>> import os, tempfile
    >>> import unmix
    >>> from unmix.exceptions import ImageReadError
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.png")
    >>> with open(path, "w") as file:
    ...     _ = file.write("not an image")
    >>> try:
    ...     unmix.read_image(path)
    ... except ValueError as error:  # an ImageReadError is also a ValueError
    ...     print(isinstance(error, ImageReadError))
    True
    """


class ImageNotFoundError(ImageReadError, FileNotFoundError):
    """An input image file does not exist.

    Examples
    --------
    >>> import unmix
    >>> try:
    ...     unmix.read_image("no-such-photo.png")
    ... except FileNotFoundError as error:
    ...     print(type(error).__name__)
    ImageNotFoundError
    """


class ImageWriteError(ImageFileError):
    """An output file cannot be written: missing or read-only folder, a folder in
    its place, or a format that cannot hold the image (e.g. RGBA as JPEG).

    Nothing is left at the path (outputs are written to a temporary name and
    renamed when complete), and a file that was there before is unchanged.

    Examples
    --------
    JPEG cannot hold an RGBA image:

    >>> import os, tempfile
    >>> import numpy as np
    >>> import unmix
    >>> from unmix.exceptions import ImageWriteError
    >>> path = os.path.join(tempfile.mkdtemp(), "cutout.jpg")
    >>> try:
    ...     unmix.write_image(path, np.zeros((4, 4, 4)))
    ... except ImageWriteError:
    ...     print("refused;", "nothing written:", not os.path.exists(path))
    refused; nothing written: True
    """


class InsufficientMemoryError(UnmixError, MemoryError):
    """A run would need more memory than the system has available.

    Raised before the work starts (nothing large has been allocated); the message
    says how much is needed, how much is available, and what to do instead.

    Examples
    --------
    It is a ``MemoryError``, so code that already handles running out of memory
    handles it too:

    >>> from unmix.exceptions import InsufficientMemoryError, UnmixError
    >>> issubclass(InsufficientMemoryError, MemoryError), issubclass(InsufficientMemoryError, UnmixError)
    (True, True)
    """


class GPUUnavailableError(UnmixError, ImportError):
    """``device="gpu"`` was asked for, but CuPy or a CUDA device is missing.

    Examples
    --------
    It is an ``ImportError``, as a missing optional dependency usually is:

    >>> from unmix.exceptions import GPUUnavailableError
    >>> issubclass(GPUUnavailableError, ImportError)
    True
    """


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped before reaching its tolerance.

    The solver that emits it still returns its best iterate together with the
    achieved residual (see DESIGN.md §3, "Errors"); the warning message states
    that residual and the tolerance that was asked for, so the caller can decide
    whether the result is usable.

    Examples
    --------
    Conjugate gradients stopped after one iteration warn, and still return their
    best iterate with its residual:

    >>> import warnings
    >>> import numpy as np
    >>> from unmix import ConvergenceWarning
    >>> from unmix.linalg import pcg
    >>> A = np.diag([1.0, 10.0, 100.0])
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     result = pcg(A, np.ones(3), maxiter=1)
    >>> caught[0].category is ConvergenceWarning, result.converged
    (True, False)
    """


class DegenerateInputWarning(UserWarning):
    """The input supports fewer layers than were asked for, and fewer are returned.

    E.g. a constant image, or a segment count above what the image's structure
    supports. The message says why and how many layers the result has.

    Examples
    --------
    A constant image has one colour, so soft colour segmentation returns one
    layer:

    >>> import warnings
    >>> import numpy as np
    >>> import unmix
    >>> from unmix.exceptions import DegenerateInputWarning
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     layers = unmix.soft_color_segments(np.full((8, 8, 3), 0.5), n_layers=4)
    >>> caught[0].category is DegenerateInputWarning, layers.n_layers
    (True, 1)
    """
