"""Sphinx configuration of the tvnumba documentation.

Build (offline; warnings are errors)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

No extension here needs the network: intersphinx is not used (links to NumPy,
SciPy and scikit-image are written as plain names), so the build runs on a
machine without network access, and the built pages read offline too: MathJax
comes from the ``sphinx-mathjax-offline`` package and is copied into
``_static/mathjax``, not loaded from a CDN.  ``TVNUMBA_DOCS_EXAMPLES`` (a regular
expression, default: every example) selects which gallery scripts run, e.g.
``TVNUMBA_DOCS_EXAMPLES='plot_beta'``.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout's tvnumba, not an installed copy

# The gallery must not open windows; Numba's pool stays as the environment set it.
os.environ.setdefault("MPLBACKEND", "Agg")

import tvnumba  # noqa: E402

project = "tvnumba"
author = "tvnumba developers"
copyright = "2026, tvnumba developers"
release = tvnumba.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax copied into the site (the module name has hyphens)
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "examples",
                    "auto_examples/*.ipynb", "auto_examples/*.py", "sg_execution_times.rst"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"

autosummary_generate = True
autodoc_default_options = {"members": False}
autodoc_typehints = "none"  # numpydoc's Parameters sections say it

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

_examples = os.environ.get("TVNUMBA_DOCS_EXAMPLES")
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": _examples if _examples else r"/plot_",
    "ignore_pattern": r"^(?!.*plot_)",  # only plot_*.py are gallery pages
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "capture_repr": ("_repr_html_", "__repr__"),
    "matplotlib_animations": False,
    "show_memory": False,
    # The execution-times pages load jQuery and DataTables from CDNs; the site reads offline.
    "write_computation_times": False,
    "plot_gallery": "True",
}

html_theme = "pydata_sphinx_theme"
html_title = f"tvnumba {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False
