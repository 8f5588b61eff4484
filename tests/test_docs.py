"""Run every ```python block of docs/*.md, file by file.

The blocks of one file run in order in one namespace, so later blocks use
names defined earlier; each block checks its own numbers with ``assert``. New
pages under docs/ are picked up automatically.
"""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, code) of every ```python block in ``text``."""
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1))
            for m in FENCE.finditer(text)]


PAGES = sorted(DOCS.glob("*.md"))


def test_docs_exist():
    assert DOCS / "from-pytorch.md" in PAGES
    assert len(python_blocks((DOCS / "from-pytorch.md").read_text())) >= 10


def test_block_parser():
    text = "intro\n```python\na = 1\n```\ntext\n```bash\nls\n```\n```python\nb = a\n```\n"
    assert python_blocks(text) == [(3, "a = 1\n"), (10, "b = a\n")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_blocks_run(page):
    namespace = {"__name__": f"docs_{page.stem}"}
    for line, code in python_blocks(page.read_text()):
        # Offset the code so tracebacks show the line number in the .md file.
        compiled = compile("\n" * (line - 1) + code, str(page), "exec")
        exec(compiled, namespace)  # noqa: S102 - the docs are our own code
