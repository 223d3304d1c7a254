"""Strict JSON input: bounded nesting, no NaN/Infinity, ordinary JSON unchanged."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.strict_json import MAX_DEPTH, loads, nesting_depth

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=60, deadline=None)
@given(JSON_VALUES)
def test_ordinary_json_parses_as_the_standard_library_does(value: object) -> None:
    text = json.dumps(value)
    assert loads(text) == json.loads(text)
    assert loads(text.encode()) == json.loads(text)


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}', "[1, NaN]"])
def test_nan_and_infinity_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a JSON number"):
        loads(text)


def test_deep_nesting_is_refused_without_recursion() -> None:
    with pytest.raises(ValueError, match=f"deeper than {MAX_DEPTH}"):
        loads("[" * 100_000)
    with pytest.raises(ValueError, match="deeper"):
        loads('{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1))
    deep_enough = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert nesting_depth(deep_enough) == MAX_DEPTH
    assert loads(deep_enough) is not None


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"s": "[" * 1000, "t": 'a\\"[[[' + "{" * 500})
    assert nesting_depth(text) == 1
    assert loads(text)["s"] == "[" * 1000


def test_wide_documents_are_not_deep() -> None:
    text = json.dumps([{"n": [i]} for i in range(10_000)])
    assert nesting_depth(text) == 3
    assert len(loads(text)) == 10_000
