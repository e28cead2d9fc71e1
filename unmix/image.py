"""Input validation and conversion at the library's boundary; image files.

Every method in unmix works on one internal image type: a C-contiguous
``(H, W, 3)`` float64 array with values in [0, 1] (what MATLAB's ``im2double``
gives the released code). :func:`as_float_image` turns what users pass into
that type, or says exactly why it cannot.
"""

import functools
import os
import warnings

import numpy as np

from ._checks import as_array
from .exceptions import ImageReadError, ImageWriteError

__all__ = [
    "as_float_image",
    "read_image",
    "write_image",
    "example_image",
    "resize_image",
    "EXAMPLES",
]

#: The smallest image side every method accepts (one full 3×3 matting window).
MIN_SIDE = 3

#: Photographs bundled with scikit-image that ``example_image`` (and the
#: ``--example`` option of the command line) can load without a network.
EXAMPLES = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry")


def as_float_image(image, name="image", min_side=MIN_SIDE):
    """Validate an image and convert it to float64 RGB in [0, 1].

    Parameters
    ----------
    image : array_like, shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)
        The image. Integer images must be ``uint8`` (scaled by 1/255) or
        ``uint16`` (scaled by 1/65535); boolean images map to {0, 1}; floating
        images must already lie in [0, 1]. Grey images are repeated into three
        channels; the alpha channel of an RGBA image is dropped with a warning.
    name : str, optional
        The argument's name, used in error messages.
    min_side : int, optional
        The smallest accepted height and width.

    Returns
    -------
    out : ndarray, shape (H, W, 3), float64
        C-contiguous; a new array unless ``image`` already had this type, in
        which case it is returned as is (callers never modify it in place).

    Raises
    ------
    TypeError
        If the dtype is not numeric, or is an integer type other than
        ``uint8``/``uint16`` (whose value range would be ambiguous).
    ValueError
        If the shape is not an image's, a side is shorter than ``min_side``,
        or a value is NaN, infinite or outside [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from unmix import as_float_image
    >>> grey = np.array([[0, 128, 255]] * 3, dtype=np.uint8)
    >>> image = as_float_image(grey)
    >>> image.shape, image.dtype
    ((3, 3, 3), dtype('float64'))
    >>> image[0, :, 0]
    array([0.        , 0.50196078, 1.        ])
    """
    if image is None:
        raise TypeError(f"{name} must be an array, got None")
    arr = as_array(image, name)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or arr.dtype == bool
    ):
        raise TypeError(
            f"{name} must have a numeric dtype (uint8, uint16, float32 or float64), "
            f"got dtype {arr.dtype}"
        )
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real-valued, got dtype {arr.dtype}")

    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[2] == 4:
        warnings.warn(
            f"{name} has 4 channels (RGBA): the alpha channel is ignored",
            UserWarning,
            stacklevel=2,
        )
        arr = arr[:, :, :3]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(
            f"{name} must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), "
            f"got shape {np.shape(image)}"
        )
    height, width = arr.shape[:2]
    if height < min_side or width < min_side:
        raise ValueError(
            f"{name} must be at least {min_side}×{min_side} pixels, "
            f"got {height}×{width}"
        )

    if arr.dtype == np.uint8:
        out = arr.astype(np.float64) / 255.0
    elif arr.dtype == np.uint16:
        out = arr.astype(np.float64) / 65535.0
    elif arr.dtype == bool:
        out = arr.astype(np.float64)
    elif np.issubdtype(arr.dtype, np.integer):
        raise TypeError(
            f"{name} has integer dtype {arr.dtype}, whose value range is ambiguous; "
            "expected uint8 (0..255), uint16 (0..65535), or floats in [0, 1]"
        )
    else:
        out = arr.astype(np.float64, copy=False)
        if not np.isfinite(out).all():
            bad = np.count_nonzero(~np.isfinite(out))
            raise ValueError(f"{name} contains {bad} NaN or infinite values")
        low, high = out.min(), out.max()
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"{name} is a floating-point image and must lie in [0, 1], "
                f"got values in [{low:.6g}, {high:.6g}]"
            )
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    return np.ascontiguousarray(out)


def _is_constant(image):
    """Whether every pixel of an (H, W, C) image has the same value."""
    return bool((image == image[:1, :1]).all())


def read_image(path):
    """Read an image file as float64 RGB in [0, 1].

    Parameters
    ----------
    path : str, bytes or os.PathLike
        A file in any format imageio reads (PNG, JPEG, TIFF, BMP, ...).
        8- and 16-bit files are scaled to [0, 1]; of an animated or
        multi-page file, the first frame is read.

    Returns
    -------
    image : ndarray, shape (H, W, 3), float64

    Raises
    ------
    TypeError
        If ``path`` is not a path (e.g. an array: use :func:`as_float_image`).
    unmix.exceptions.ImageNotFoundError
        If ``path`` does not exist (also a ``FileNotFoundError``).
    unmix.exceptions.ImageReadError
        If ``path`` is a folder, unreadable, not an image imageio can read, or
        an image unmix does not accept (see :func:`as_float_image`); also a
        ``ValueError``.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import unmix
    >>> path = os.path.join(tempfile.mkdtemp(), "photo.png")
    >>> unmix.write_image(path, np.full((4, 6, 3), 0.5))
    >>> image = unmix.read_image(path)
    >>> image.shape, round(float(image[0, 0, 0]), 3)
    ((4, 6, 3), 0.502)
    """
    import imageio.v3 as iio

    from ._files import input_file

    path = input_file(path, "path")
    try:
        with warnings.catch_warnings():
            # imageio tries every plugin on files it cannot identify, and some
            # legacy plugins warn that they are deprecated while doing so.
            warnings.simplefilter("ignore", DeprecationWarning)
            data = iio.imread(path)
    except Exception as exc:  # imageio raises many types for unreadable files
        # imageio's message lists every plugin it tried, one per line: keep the first.
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ImageReadError(f"cannot read {path!r} as an image: {reason}") from exc
    if data.ndim == 4:  # an animated/multi-page file: take the first frame
        data = data[0]
    try:
        return as_float_image(data, name=f"the image in {path!r}")
    except (TypeError, ValueError) as exc:
        raise ImageReadError(str(exc)) from exc


def write_image(path, image, bit_depth=8):
    """Write an image to a file, clipping floating-point values to [0, 1].

    Soft segments are not clamped by the methods (they lie in about
    [-0.1, 1.1]); writing them as pixels clips them to [0, 1]. The file is
    written under a temporary name and renamed when complete, so an error
    never leaves a partial file, and an existing file is replaced only by a
    complete one.

    Parameters
    ----------
    path : str, bytes or os.PathLike
        The output file; its extension chooses the format (``.png``,
        ``.tif``, ``.jpg``, ``.bmp``, ``.webp``, ...). Its folder must exist.
    image : array_like, shape (H, W), (H, W, 3) or (H, W, 4)
        Floats in [0, 1] (values outside are clipped; NaN is refused), or
        ``uint8`` (0–255), ``uint16`` (0–65535) or boolean pixels, which are
        scaled to [0, 1] first, as :func:`as_float_image` does.
    bit_depth : {8, 16}, optional
        Bits per channel of the written file. 16-bit files can be grey PNGs
        (alpha mattes) or TIFFs of any channel count.

    Raises
    ------
    TypeError, ValueError
        If ``image`` or ``bit_depth`` is not as described.
    unmix.exceptions.ImageWriteError
        If the path cannot be written (a missing or read-only folder, a
        folder in its place, no or an unknown extension) or its format cannot
        hold the image (RGBA or 16 bits as JPEG).

    Examples
    --------
    A 16-bit PNG keeps a matte's precision that 8 bits would round away:

    >>> import os, tempfile
    >>> import numpy as np
    >>> import unmix
    >>> folder = tempfile.mkdtemp()
    >>> alpha = np.linspace(0.0, 1.0, 12).reshape(3, 4)
    >>> unmix.write_image(os.path.join(folder, "alpha.png"), alpha, bit_depth=16)
    >>> back = unmix.read_image(os.path.join(folder, "alpha.png"))[..., 0]
    >>> bool(np.abs(back - alpha).max() < 1e-4)
    True
    """
    import imageio.v3 as iio

    from ._files import atomic_output

    if isinstance(bit_depth, (bool, np.bool_)) or bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    arr = _pixels_to_write(image)
    path = output_image_path(path, 1 if arr.ndim == 2 else arr.shape[2], bit_depth)
    extension = os.path.splitext(path)[1].lower()
    scale, dtype = (255.0, np.uint8) if bit_depth == 8 else (65535.0, np.uint16)
    data = np.rint(np.clip(arr, 0.0, 1.0) * scale).astype(dtype)
    with atomic_output(path, "path") as temporary:
        iio.imwrite(temporary, data, extension=extension)


def output_image_path(path, channels=3, bit_depth=8, name="path"):
    """Check that an image of ``channels`` channels and ``bit_depth`` bits can be written
    to ``path`` (:func:`write_image`'s checks, made before any work is done).

    Returns
    -------
    path : str

    Raises
    ------
    unmix.exceptions.ImageWriteError
        If the folder is missing or read-only, ``path`` is a folder, its
        extension is missing or unknown, or its format cannot hold the image.
    """
    from ._files import output_file

    path = output_file(path, name)
    extension = os.path.splitext(path)[1].lower()
    if extension not in _writable_extensions():
        raise ImageWriteError(
            f"{name} {path!r} has {'no' if not extension else 'an unknown'} image extension; "
            "expected e.g. .png, .tif, .jpg or .bmp"
        )
    if extension in (".jpg", ".jpeg", ".jpe", ".jfif") and (channels == 4 or bit_depth == 16):
        raise ImageWriteError(
            f"JPEG holds neither an alpha channel nor 16 bits, got "
            f"{'RGBA' if channels == 4 else '16 bits'} for {name} {path!r}; write a .png or "
            ".tif instead"
        )
    if bit_depth == 16 and channels > 1 and extension not in (".tif", ".tiff"):
        raise ImageWriteError(
            f"16-bit colour images can only be written as TIFF, got {name} {path!r}; "
            "use a .tif extension, bit_depth=8, or write each channel as a grey PNG"
        )
    return path


def _pixels_to_write(image):
    """``image`` for :func:`write_image` as float64 (H, W) or (H, W, C) in any range."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        arr = arr / 255.0
    elif arr.dtype == np.uint16:
        arr = arr / 65535.0
    elif arr.dtype == bool or np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    else:
        raise TypeError(
            f"image must hold floats in [0, 1], uint8 or uint16 pixels, got dtype {arr.dtype}"
        )
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or arr.size == 0:
        raise ValueError(
            f"image must have shape (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"image contains {np.count_nonzero(~np.isfinite(arr))} NaN or "
                         "infinite values")
    return arr


@functools.lru_cache(maxsize=None)
def _writable_extensions():
    """File extensions Pillow (imageio's writer of common formats) can write, and TIFF."""
    from PIL import Image

    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE)


def example_image(name="coffee", shape=None):
    """Load a photograph bundled with scikit-image, optionally resized.

    Parameters
    ----------
    name : str, optional
        One of :data:`EXAMPLES`.
    shape : tuple of int (H, W), optional
        Resize to this shape with anti-aliasing (for fast runs and tests).

    Returns
    -------
    image : ndarray, shape (H, W, 3), float64 in [0, 1]

    Examples
    --------
    >>> from unmix.image import EXAMPLES, example_image
    >>> "coffee" in EXAMPLES
    True
    >>> image = example_image("coffee", (48, 64))
    >>> image.shape, image.dtype
    ((48, 64, 3), dtype('float64'))
    """
    import skimage.data

    if name not in EXAMPLES:
        raise ValueError(f"unknown example {name!r}; expected one of {EXAMPLES}")
    image = as_float_image(getattr(skimage.data, name)(), name=name)
    return image if shape is None else resize_image(image, shape)


def resize_image(image, shape):
    """Resize an image (or any H×W×C stack in [0, 1]) with anti-aliasing.

    Bilinear interpolation after an anti-aliasing Gaussian (scikit-image's
    ``resize``), replicate borders, values clipped back to [0, 1].

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, C), values in [0, 1]
    shape : tuple of int (H', W')

    Returns
    -------
    resized : ndarray, shape (H', W') or (H', W', C), float64, C-contiguous

    Examples
    --------
    >>> from unmix.image import example_image, resize_image
    >>> image = example_image("astronaut", (64, 64))
    >>> resize_image(image, (16, 24)).shape
    (16, 24, 3)
    """
    import skimage.transform

    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < MIN_SIDE:
        raise ValueError(f"shape must be (H, W) with both sides >= {MIN_SIDE}, got {shape}")
    resized = skimage.transform.resize(
        image, shape + np.shape(image)[2:], order=1, anti_aliasing=True, mode="edge"
    )
    return np.ascontiguousarray(np.clip(resized, 0.0, 1.0))
