"""The runnable snippets of the documentation pages still run (docs/migrating.rst,
docs/distance.rst): every ``.. code-block:: python`` there executes without error."""

import contextlib
import io
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = ["migrating.rst", "distance.rst"]
pytestmark = pytest.mark.skipif(not (DOCS / "conf.py").is_file(),
                                reason="no docs/ here (an sdist ships tests only)")


def _blocks(page):
    text = (DOCS / page).read_text(encoding="utf-8")
    found = re.findall(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", text)
    return ["\n".join(line[3:] for line in block.splitlines()) for block in found]


@pytest.mark.parametrize("page", PAGES)
def test_snippets_run(page):
    blocks = _blocks(page)
    assert blocks, f"no python code blocks in {page}"
    for code in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, page, "exec"), {})
        assert "False" not in out.getvalue(), out.getvalue()
