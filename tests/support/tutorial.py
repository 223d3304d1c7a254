"""The tutorial's code blocks (docs/tutorial.md), for the tests that run them.

A block is marked by a comment line just before its fence: `<!-- file: PATH -->` (written
to PATH) or `<!-- answer: URL-PATH -->` (the JSON the worker answers at URL-PATH).
"""

from __future__ import annotations

import re
from pathlib import Path

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "tutorial.md"
_BLOCK = re.compile(r"<!-- (file|answer): (\S+) -->\n```[a-z]*\n(.*?)```", re.DOTALL)


def blocks(kind: str) -> dict[str, str]:
    """{path: text} of the tutorial's blocks of `kind` ("file" or "answer")."""
    return {path: text for found, path, text in _BLOCK.findall(TUTORIAL.read_text())
            if found == kind}


def write_files(folder: Path) -> None:
    """Write the tutorial's files under `folder`."""
    for path, text in blocks("file").items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
