"""Tests of unmix._backend: where a stage runs and what it returns."""

import sys

import numpy as np
import pytest
import scipy.sparse as sp

from unmix import _backend
from unmix._backend import (
    GPUUnavailableError,
    get_backend,
    gpu_available,
    is_gpu_array,
    like_input,
    resolve_device,
    to_host,
)


def test_cpu_backend_is_numpy_and_scipy():
    backend = get_backend("cpu")
    assert backend.xp is np and backend.sparse is sp and not backend.is_gpu
    assert get_backend(None, np.ones(3), None) is backend
    a = np.arange(4.0)
    assert backend.asarray(a) is a  # no copy where nothing changes
    assert backend.asarray([1, 2]).dtype == np.float64
    matrix = backend.csr(sp.identity(3, format="coo"))
    assert sp.isspmatrix_csr(matrix) and matrix.dtype == np.float64
    backend.synchronize()  # nothing to wait for


def test_resolve_device_rules():
    assert resolve_device(None) == "cpu"
    assert resolve_device(None, np.ones(2), sp.identity(2)) == "cpu"
    assert resolve_device("gpu", np.ones(2)) == "gpu"
    for bad in ("cuda", "GPU", 0, True):
        with pytest.raises(ValueError, match=r"device must be None, 'cpu' or 'gpu'"):
            resolve_device(bad)


def test_host_arrays_pass_through():
    a = np.ones(3)
    assert to_host(a) is a and not is_gpu_array(a)
    assert like_input(a, np.zeros(2)) is a


def test_gpu_refused_without_cupy(monkeypatch):
    """No CuPy: an ImportError subclass that names the extra to install."""
    if gpu_available():
        pytest.skip("CuPy and a CUDA device are present")
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy now raises ImportError
    _backend._backend.cache_clear()
    try:
        with pytest.raises(GPUUnavailableError, match=r"pip install 'unmix\[gpu\]'"):
            get_backend("gpu")
        assert issubclass(GPUUnavailableError, ImportError)
        assert not gpu_available()
    finally:
        _backend._backend.cache_clear()


def test_import_unmix_does_not_import_cupy():
    import subprocess

    code = "import sys, unmix._backend; print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.gpu
def test_gpu_backend_moves_and_returns():
    import cupy
    import cupyx.scipy.sparse as csp

    backend = get_backend("gpu")
    assert backend.xp is cupy and backend.sparse is csp and backend.is_gpu
    a = backend.asarray(np.arange(3))
    assert isinstance(a, cupy.ndarray) and a.dtype == np.float64 and is_gpu_array(a)
    assert get_backend(None, a) is backend
    m = backend.csr(sp.random(5, 5, density=0.5, random_state=0))
    assert is_gpu_array(m) and resolve_device(None, m) == "gpu"
    np.testing.assert_array_equal(to_host(m).toarray(), m.get().toarray())
    assert isinstance(like_input(a, np.ones(1)), np.ndarray)
    assert like_input(a, a) is a
    backend.synchronize()
