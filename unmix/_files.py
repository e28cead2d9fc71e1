"""File paths at the library's boundary, and writes that never leave half a file.

Every file unmix writes goes through :func:`atomic_output`: the writer fills a
temporary file beside the target, which is renamed onto the target only when
it is complete (``os.replace`` is atomic on one file system). An error midway
removes the temporary file, so the target is either the old file, untouched,
or the complete new one.
"""

import contextlib
import os
import uuid

from .exceptions import ImageNotFoundError, ImageReadError, ImageWriteError


def as_path(path, name="path"):
    """``path`` as a ``str``: a ``str``, ``bytes`` (file-system encoding) or ``os.PathLike``."""
    if isinstance(path, (str, bytes)) or hasattr(path, "__fspath__"):
        path = os.fsdecode(os.fspath(path))
    else:
        raise TypeError(f"{name} must be a file path (str or os.PathLike), "
                        f"got {type(path).__name__}")
    if not path:
        raise ValueError(f"{name} must not be empty")
    if "\0" in path:
        raise ValueError(f"{name} must not contain a NUL character, got {path!r}")
    return path


def input_file(path, name="path"):
    """Check that ``path`` is a readable file and return it as a ``str``."""
    path = as_path(path, name)
    if not os.path.exists(path):
        raise ImageNotFoundError(f"{name}: no such file: {path!r}")
    if os.path.isdir(path):
        raise ImageReadError(f"{name}: {path!r} is a folder, expected an image file")
    if not os.access(path, os.R_OK):
        raise ImageReadError(f"{name}: {path!r} is not readable (permission denied)")
    return path


def output_file(path, name="path"):
    """Check that ``path`` can be written as a file and return it as a ``str``.

    Its folder must exist and be writable, and ``path`` must not be a folder.
    """
    path = as_path(path, name)
    if os.path.isdir(path):
        raise ImageWriteError(f"{name}: {path!r} is a folder, expected a file name")
    folder = os.path.dirname(path) or "."
    if not os.path.exists(folder):
        raise ImageWriteError(f"{name}: the folder {folder!r} does not exist; create it first")
    if not os.path.isdir(folder):
        raise ImageWriteError(f"{name}: {folder!r} is a file, not a folder, so {path!r} "
                              "cannot be created")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ImageWriteError(f"{name}: the folder {folder!r} is not writable "
                              "(permission denied); choose another output path")
    return path


def output_folder(path, name="directory"):
    """Create the folder ``path`` (and its parents) if needed; return it as a ``str``."""
    path = as_path(path, name)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ImageWriteError(f"{name}: {path!r} is a file, expected a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise ImageWriteError(f"{name}: cannot create the folder {path!r}: "
                              f"{exc.strerror or exc}") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise ImageWriteError(f"{name}: the folder {path!r} is not writable "
                              "(permission denied); choose another output folder")
    return path


@contextlib.contextmanager
def atomic_output(path, name="path"):
    """Yield a temporary path beside ``path``; rename it onto ``path`` once the block completes.

    The temporary name keeps the extension of ``path`` (writers choose the
    format by it). An exception in the block, or a failed rename, removes the
    temporary file and leaves ``path`` as it was; an ``OSError`` is re-raised
    as :class:`ImageWriteError` naming ``path``.
    """
    path = output_file(path, name)
    folder, base = os.path.split(path)
    stem, extension = os.path.splitext(base)
    temporary = os.path.join(folder, f".{stem}.{uuid.uuid4().hex[:12]}.partial{extension}")
    try:
        yield temporary
        os.replace(temporary, path)
    except ImageWriteError:
        raise
    except OSError as exc:
        raise ImageWriteError(f"{name}: cannot write {path!r}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
