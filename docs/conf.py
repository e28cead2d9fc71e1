"""Sphinx configuration of the unmix documentation.

Build with ``python -m sphinx -W -b html docs docs/_build/html``. The teaching
notebooks of ``notebooks/`` are rendered as the user guide without being run
(``nb_execution_mode = "off"``): they show their code and text, and the figures
they hold if they were saved with outputs. Set ``UNMIX_DOCS_EXECUTE=1`` to run
them during the build (minutes on two cores; results are cached in
``docs/_build/.jupyter_cache``).
"""

import importlib.util
import os
import pathlib
import shutil

import unmix

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent

project = "unmix"
author = "the unmix developers"
copyright = "the unmix developers, BSD 3-Clause licence"
version = release = unmix.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "README.md"]
templates_path = ["_templates"]

# -- API reference ----------------------------------------------------------

autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
# torch.nn.Module.forward's generic docstring is not the modules' own
autodoc_inherit_docstrings = False
# unmix.nets needs PyTorch; the reference is built from its docstrings alone, so
# a machine without torch renders the same pages against a stand-in module.
autodoc_mock_imports = [] if importlib.util.find_spec("torch") else ["torch"]

numpydoc_show_class_members = False  # the class template lists members itself
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# MathJax comes from its CDN. To read the site offline, point UNMIX_DOCS_MATHJAX
# at a local MathJax 2 (``MathJax.js``, e.g. Debian's libjs-mathjax:
# /usr/share/javascript/mathjax/MathJax.js) or MathJax 3 (``tex-chtml.js``).
if os.environ.get("UNMIX_DOCS_MATHJAX"):
    _mathjax = pathlib.Path(os.environ["UNMIX_DOCS_MATHJAX"]).resolve()
    mathjax_path = _mathjax.as_uri()
    if _mathjax.name == "MathJax.js":
        mathjax_path += "?config=TeX-AMS-MML_HTMLorMML"
        mathjax2_config = {"tex2jax": {"inlineMath": [["\\(", "\\)"]],
                                       "displayMath": [["\\[", "\\]"]],
                                       "processEscapes": True,
                                       "processClass": "math|output_area",
                                       "ignoreClass": "tex2jax_ignore|mathjax_ignore|document"}}

# -- notebooks (user guide) -------------------------------------------------

nb_execution_mode = "cache" if os.environ.get("UNMIX_DOCS_EXECUTE") == "1" else "off"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3


def _copy_notebooks():
    """Copy ``notebooks/*.ipynb`` under the source tree (Sphinx reads files below it)."""
    target = DOCS / "user_guide" / "notebooks"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        shutil.copy2(path, target / path.name)


_copy_notebooks()

# -- HTML -------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"unmix {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False
# pages without a section to navigate: the article takes the width (wide tables)
html_sidebars = {"index": [], "getting_started": [], "benchmarks": [], "papers/*": []}
html_static_path = ["_static"]
html_css_files = ["unmix.css"]


# -- every documented function, class and method has an Examples section ------

_EXAMPLE_KINDS = {"function", "class", "exception", "method"}


def _require_examples(app, what, name, obj, options, lines):
    """Warn (an error under ``-W``) about a docstring without an Examples section."""
    if what not in _EXAMPLE_KINDS or not lines:
        return
    for head, rule in zip(lines, lines[1:]):
        if head.strip() == "Examples" and set(rule.strip()) == {"-"}:
            return
    from sphinx.util import logging

    logging.getLogger(__name__).warning(
        "docstring of %s has no Examples section", name, type="unmix", subtype="examples")


def setup(app):
    # before numpydoc (priority 500) turns the sections into reST
    app.connect("autodoc-process-docstring", _require_examples, priority=400)
