"""JSON from outside, parsed with bounds: nesting depth, and no NaN or Infinity.

Python's `json` accepts `NaN`, `Infinity` and `-Infinity` (not JSON: other languages cannot
read them back) and recurses once per nesting level, so `[` repeated 100,000 times raises
`RecursionError` instead of a parse error. `loads` refuses both with a `ValueError` that
says what is wrong, before the parser runs.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

__all__ = ["MAX_DEPTH", "loads", "nesting_depth"]

#: Deepest nesting of arrays and objects accepted; real payloads stay far below it.
MAX_DEPTH = 64

_STRINGS = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def nesting_depth(text: str) -> int:
    """The deepest nesting of `[`/`{` in `text`, brackets inside strings not counted."""
    brackets = _BRACKETS.findall(_STRINGS.sub('""', text))
    if not brackets:
        return 0
    return max(accumulate((1 if b in "[{" else -1 for b in brackets), initial=0))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (NaN and Infinity are not allowed)")


def loads(raw: str | bytes, *, max_depth: int = MAX_DEPTH, allow_nan: bool = False) -> Any:
    """Parse `raw` as strict JSON; `ValueError` (or `json.JSONDecodeError`) if it is not.

    `allow_nan=True` keeps Python's reading of NaN and Infinity (for records other Python
    producers wrote); the depth bound holds either way.
    """
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    if allow_nan:
        return json.loads(text)
    return json.loads(text, parse_constant=_no_constant)
