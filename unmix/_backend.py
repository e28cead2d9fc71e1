"""Where a stage runs: NumPy/SciPy on the CPU or CuPy/cupyx on a CUDA GPU.

Every stage that has a GPU path takes ``device=None | "cpu" | "gpu"`` (the entry points
that take an image, ``semantic_soft_segments`` and ``closed_form_matting``, default to
``"cpu"``) and runs one algorithm body against the array module of :func:`get_backend` (``backend.xp``:
``numpy`` or ``cupy``; ``backend.sparse``: ``scipy.sparse`` or
``cupyx.scipy.sparse``). CuPy implements NumPy's own API (``out=`` arguments,
in-place updates, ``einsum``), which the stages use and the array-API standard lacks,
so the bodies are written against NumPy's API, not the standard's.

The rule for devices and results:

- ``device=None`` runs where the input arrays are: on the GPU if any is a CuPy array
  (or a ``cupyx.scipy.sparse`` matrix), else on the CPU.
- ``device="gpu"`` or ``"cpu"`` runs there, moving the inputs as needed.
- Results come back as the caller's arrays are: NumPy in, NumPy out (also after a GPU
  run), CuPy in, CuPy out. Pass CuPy arrays to keep results on the GPU between stages.

CuPy is imported only when a GPU is asked for or a CuPy array is seen, so
``import unmix`` never imports it. Asking for the GPU without CuPy or without a CUDA
device raises a :class:`GPUUnavailableError` that says what to install.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from .exceptions import GPUUnavailableError

__all__ = ["Backend", "GPUUnavailableError", "get_backend", "gpu_available", "issparse",
           "is_gpu_array", "like_input", "resolve_device", "to_host"]

DEVICES = ("cpu", "gpu")


@dataclass(frozen=True)
class Backend:
    """The array modules of one device.

    Attributes
    ----------
    device : {"cpu", "gpu"}
    xp : module
        ``numpy`` or ``cupy``.
    sparse : module
        ``scipy.sparse`` or ``cupyx.scipy.sparse``.
    """

    device: str
    xp: ModuleType
    sparse: ModuleType

    @property
    def is_gpu(self):
        return self.device == "gpu"

    def asarray(self, a, dtype=np.float64, order=None):
        """``a`` as an array of this device (a copy only where the device or dtype changes)."""
        if self.is_gpu:
            return self.xp.asarray(a, dtype=dtype, order=order)
        return np.asarray(to_host(a), dtype=dtype, order=order)

    def ascontiguous(self, a, dtype=np.float64):
        """``a`` as a C-contiguous array of this device."""
        return self.xp.ascontiguousarray(self.asarray(a, dtype))

    def csr(self, matrix, dtype=np.float64):
        """A sparse matrix as a CSR matrix of this device."""
        import scipy.sparse

        if self.is_gpu:
            if self.sparse.issparse(matrix):
                return self.sparse.csr_matrix(matrix, dtype=dtype)
            return self.sparse.csr_matrix(scipy.sparse.csr_matrix(matrix, dtype=dtype))
        return scipy.sparse.csr_matrix(to_host(matrix), dtype=dtype)

    def synchronize(self):
        """Wait for the device's queued work (for timing); nothing on the CPU."""
        if self.is_gpu:
            self.xp.cuda.get_current_stream().synchronize()


def is_gpu_array(a):
    """Whether ``a`` is a CuPy array or ``cupyx.scipy.sparse`` matrix (without importing CuPy)."""
    module = type(a).__module__
    return module == "cupy" or module.startswith(("cupy.", "cupyx."))


def to_host(a):
    """``a`` on the host: CuPy arrays and cupyx sparse matrices are copied back, others pass."""
    if is_gpu_array(a):
        return a.get()
    return a


def resolve_device(device, *arrays):
    """The device a stage runs on: ``device`` if given, else where ``arrays`` are.

    Parameters
    ----------
    device : {None, "cpu", "gpu"}
    *arrays
        The stage's array inputs (None entries are ignored).

    Returns
    -------
    {"cpu", "gpu"}

    Raises
    ------
    ValueError
        If ``device`` is not None, "cpu" or "gpu".
    """
    if device is None:
        return "gpu" if any(is_gpu_array(a) for a in arrays if a is not None) else "cpu"
    if device not in DEVICES:
        raise ValueError(f"device must be None, 'cpu' or 'gpu', got {device!r}")
    return device


def get_backend(device=None, *arrays):
    """The :class:`Backend` of ``resolve_device(device, *arrays)``.

    Raises
    ------
    GPUUnavailableError
        For the GPU when CuPy is not installed or sees no CUDA device.
    """
    return _backend(resolve_device(device, *arrays))


@functools.lru_cache(maxsize=None)
def _backend(device):
    if device == "cpu":
        import scipy.sparse

        return Backend("cpu", np, scipy.sparse)
    try:
        import cupy
        import cupyx.scipy.sparse
    except ImportError as exc:
        raise GPUUnavailableError(
            "device='gpu' needs CuPy: pip install 'unmix[gpu]' (CUDA 12) or "
            f"'unmix[gpu-cuda13]' (CUDA 13); importing it failed with: {exc}") from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError without a driver, among others
        raise GPUUnavailableError(
            f"device='gpu' needs a CUDA device, but CuPy found none ({exc})") from exc
    if count < 1:
        raise GPUUnavailableError("device='gpu' needs a CUDA device, but CuPy found none")
    return Backend("gpu", cupy, cupyx.scipy.sparse)


def gpu_available():
    """Whether ``device="gpu"`` can run here (CuPy installed and a CUDA device present)."""
    try:
        _backend("gpu")
    except GPUUnavailableError:
        return False
    return True


def like_input(result, *inputs):
    """``result`` as the caller's ``inputs`` are (the module's rule): a CuPy array if one
    of them is on the GPU (copied there after a CPU run), else a host array."""
    if any(is_gpu_array(a) for a in inputs if a is not None):
        return result if is_gpu_array(result) else _backend("gpu").xp.asarray(result)
    return to_host(result)


def issparse(matrix):
    """Whether ``matrix`` is a SciPy or a ``cupyx.scipy.sparse`` matrix."""
    if is_gpu_array(matrix):
        return _backend("gpu").sparse.issparse(matrix)
    import scipy.sparse

    return scipy.sparse.issparse(matrix)
