import subprocess
import sys

import pytest

import unmix


def test_import_loads_no_heavy_modules():
    code = ("import sys, unmix; "
            "print(sorted(m for m in ('torch', 'cupy', 'numba', 'scipy.sparse') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_public_name_resolves():
    for name in unmix.__all__:
        assert getattr(unmix, name) is not None
    assert set(unmix.__all__) <= set(dir(unmix))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        unmix.nothing  # noqa: B018
