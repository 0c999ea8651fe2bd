"""Sphinx configuration: pydata theme, numpydoc, autosummary, sphinx-gallery.

``make doc`` builds with warnings as errors and runs every script in
``examples/`` (the gallery) on bundled data.
"""

import os
import sys
from pathlib import Path

import numpydoc.xref

import sklearn_deepclust

DOC = Path(__file__).resolve().parent
sys.path.insert(0, str(DOC.parent))  # `benchmarks` for the benchmark page

project = "sklearn_deepclust"
author = "The sklearn_deepclust developers"
copyright = "2026, " + author
version = release = sklearn_deepclust.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
autodoc_default_options = {"inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Types are parsed by numpydoc (so that "ndarray of shape (n_clusters_,)"
# is text, not a reference); words it does not know stay plain text.
# The build is offline (no intersphinx), so numpydoc's default links to the
# numpy and python docs ("array_like", "bool", ...) would all be broken.
numpydoc_xref_param_type = True
numpydoc_xref_ignore = "all"
numpydoc_xref_aliases = {}
numpydoc.xref.DEFAULT_LINKS.clear()

intersphinx_mapping = {}  # no network while building

sphinx_gallery_conf = {
    "examples_dirs": str(DOC.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "min_reported_time": 1,
}

html_theme = "pydata_sphinx_theme"
html_title = "sklearn_deepclust"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_static_path = []
templates_path = []
exclude_patterns = [
    "_build",
    "README.md",
    "auto_examples/*.ipynb",
    "generated/benchmark_results.rst",
]

os.environ.setdefault("MPLBACKEND", "Agg")

# The benchmark page includes the tables of benchmarks/README.md.
sys.path.insert(0, str(DOC))
from _markdown_tables import markdown_to_rst  # noqa: E402

(DOC / "generated").mkdir(exist_ok=True)
_readme = (DOC.parent / "benchmarks" / "README.md").read_text(encoding="utf-8")
_readme = _readme.split("\n", 1)[1] if _readme.startswith("# ") else _readme  # the page has a title
(DOC / "generated" / "benchmark_results.rst").write_text(markdown_to_rst(_readme))
