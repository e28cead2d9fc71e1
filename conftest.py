"""Doctest collection over ``unmix/`` (``--doctest-modules`` in setup.cfg).

The examples of :mod:`unmix.nets` need PyTorch; without it the package is not
collected, so the rest runs on a machine with the core dependencies only. GPU
code is imported lazily by the modules that use it, and no example needs a GPU.
"""

import importlib.util
import tempfile

import pytest
from _pytest.doctest import DoctestItem

collect_ignore = ["docs/conf.py", "benchmarks", "notebooks"]
if importlib.util.find_spec("torch") is None:
    collect_ignore.append("unmix/nets")


@pytest.fixture(autouse=True)
def _doctest_temporary_files(request, monkeypatch):
    """Examples that write files use ``tempfile``: point it at pytest's own folder."""
    if isinstance(request.node, DoctestItem):
        monkeypatch.setattr(tempfile, "tempdir", str(request.getfixturevalue("tmp_path")))
