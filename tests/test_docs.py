"""The documentation: the Examples sections of the public docstrings print what they say,
and every ``.. code-block:: python`` of docs/migrating.rst and docs/distance.rst runs."""

import contextlib
import doctest
import importlib
import io
import re
from pathlib import Path

import pytest

MODULES = ["tvnumba.tv", "tvnumba.compat", "tvnumba.distance", "tvnumba.restoration.denoise",
           "tvnumba._threads", "tvnumba.restoration.inverse", "tvnumba.operators.radon",
           "tvnumba.restoration.tomography"]
DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = ["migrating.rst", "distance.rst"]


# --------------------------------------------------------------------------- docstrings
@pytest.mark.parametrize("name", MODULES)
def test_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0


def test_auto_weight_examples():
    from tvnumba.restoration import auto_weight

    result = doctest.testmod(auto_weight, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------------- docs pages
def _blocks(page):
    text = (DOCS / page).read_text(encoding="utf-8")
    found = re.findall(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", text)
    return ["\n".join(line[3:] for line in block.splitlines()) for block in found]


@pytest.mark.skipif(not (DOCS / "conf.py").is_file(),
                    reason="no docs/ here (an sdist ships tests only)")
@pytest.mark.parametrize("page", PAGES)
def test_snippets_run(page):
    blocks = _blocks(page)
    assert blocks, f"no python code blocks in {page}"
    for code in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, page, "exec"), {})
        assert "False" not in out.getvalue(), out.getvalue()


# --------------------------------------------------------------------------- README
def test_readme_python_runs():
    """The README's Python blocks run in order in one namespace (the CuPy one needs a GPU)."""
    text = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 4
    namespace: dict = {}
    ran = 0
    for block in blocks:
        if "import cupy" in block:
            continue
        if "import dask" in block:
            pytest.importorskip("dask.array")
        exec(compile(block, "README.md", "exec"), namespace)
        ran += 1
    assert ran >= 4
    assert namespace["info"].converged
