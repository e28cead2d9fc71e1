"""The documentation site builds without a warning and documents the whole public API."""

import importlib
import importlib.util
import pathlib
import subprocess
import sys

import pytest

for _tool in ("sphinx", "numpydoc", "myst_nb", "pydata_sphinx_theme"):
    pytest.importorskip(_tool)

from sphinx.util.inventory import InventoryFile  # noqa: E402

import unmix  # noqa: E402

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"


def _public_objects():
    """``{qualified name: object}`` of every public function and class."""
    modules = ["unmix", "exceptions", *unmix._SUBMODULES]
    if importlib.util.find_spec("torch") is None:
        modules.remove("nets")
    found = {}
    for short in modules:
        module = importlib.import_module(short if short == "unmix" else f"unmix.{short}")
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if callable(obj) and not isinstance(obj, type(unmix)):
                found[f"{module.__name__}.{name}"] = obj
    return found


def _resolve(name):
    """The object an inventory name stands for (the longest importable module prefix first)."""
    parts = name.split(".")
    obj = unmix
    try:  # attributes first: unmix.graph.laplacian is a function and a module
        for part in parts[1:]:
            obj = getattr(obj, part)
        return obj
    except (AttributeError, ImportError):  # ImportError: unmix.nets without torch
        pass
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
            for part in parts[split:]:
                obj = getattr(obj, part)
        except (ImportError, AttributeError):
            continue
        return obj
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the site once, as the README's command does (``-W``: warnings are errors)."""
    out = tmp_path_factory.mktemp("html")
    run = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(out / ".doctrees"), str(DOCS), str(out)],
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-5000:]
    return out


def test_build_has_no_warnings(site):
    for page in ("index", "getting_started", "benchmarks", "api/index", "papers/sss",
                 "papers/color", "papers/matting", "papers/fscs", "user_guide/index"):
        assert (site / f"{page}.html").is_file(), page
    notebooks = sorted(p.stem for p in (DOCS.parent / "notebooks").glob("*.ipynb"))
    rendered = sorted(p.stem for p in (site / "user_guide" / "notebooks").glob("*.html"))
    assert rendered == notebooks


def test_every_public_object_is_documented(site):
    with open(site / "objects.inv", "rb") as file:
        inventory = InventoryFile.load(file, "", lambda base, uri: uri)
    documented = {id(_resolve(name)) for kind in ("py:function", "py:class", "py:exception")
                  for name in getattr(inventory, "data", inventory).get(kind, {})}
    missing = [name for name, obj in _public_objects().items() if id(obj) not in documented]
    assert not missing, f"not in the API reference: {missing}"


def test_a_docstring_without_examples_fails_the_build(monkeypatch):
    """The site's own check: a documented function or method needs an Examples section."""
    import sphinx.util.logging

    monkeypatch.syspath_prepend(str(DOCS))
    conf = importlib.import_module("conf")
    warnings = []

    class Logger:
        def warning(self, message, *args, **kwargs):
            warnings.append(message % args)

    monkeypatch.setattr(sphinx.util.logging, "getLogger", lambda name: Logger())
    conf._require_examples(None, "function", "f", None, None,
                           ["Summary.", "", "Returns", "-------", "int"])
    conf._require_examples(None, "method", "g", None, None,
                           ["Summary.", "", "Examples", "--------", ">>> 1", "1"])
    conf._require_examples(None, "property", "h", None, None, ["Summary."])
    assert warnings == ["docstring of f has no Examples section"]
