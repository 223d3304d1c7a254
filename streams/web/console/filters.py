"""A small, safe filter language for message search; parsed here, never `eval`-ed.

    value.amount > 100
    key == "customer-7" and headers.trace contains "abc"
    not (value.status == "done" or value.items.0.sku startswith "X-")

Operands are fields (`key`, `value`, `value.a.b`, `value.items.0`, `headers.<name>`,
`partition`, `offset`, `timestamp`) and literals (numbers, "strings" or 'strings', true,
false, null). Operators: `==`, `!=`, `>`, `>=`, `<`, `<=`, `contains`, `startswith`,
`endswith`, `exists` (postfix, `value.note exists`), combined with `and`, `or`, `not` and
parentheses. A field a record does not have, or a comparison of mismatched types (a string
with a number), is simply false: a search never fails half-way through a topic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FilterError", "Predicate", "compile_filter"]

Predicate = Callable[[Mapping[str, Any]], bool]
MAX_LENGTH = 2000
MAX_DEPTH = 32
_MISSING = object()
ROOTS = ("key", "value", "headers", "partition", "offset", "timestamp")


class FilterError(ValueError):
    """The expression is not valid; the message says where and what was expected."""


@dataclass(frozen=True)
class Token:
    kind: str  # "field", "string", "number", "word", "op", "(", ")", "end"
    text: str
    value: Any
    position: int


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>==|!=|>=|<=|>|<)
  | (?P<paren>[()])
  | (?P<name>[A-Za-z_][\w\-]*(?:\.[\w\-]+)*)
""", re.VERBOSE)

_WORD_OPS = {"contains", "startswith", "endswith"}
_KEYWORDS = {"and", "or", "not", "exists", "true", "false", "null", *_WORD_OPS}


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise FilterError(f"unexpected {text[position]!r} at position {position + 1}")
        kind = match.lastgroup
        raw = match.group()
        if kind == "number":
            tokens.append(Token("number", raw, float(raw) if any(c in raw for c in ".eE")
                                else int(raw), position))
        elif kind == "string":
            tokens.append(Token("string", raw, _unquote(raw, position), position))
        elif kind == "op":
            tokens.append(Token("op", raw, raw, position))
        elif kind == "paren":
            tokens.append(Token(raw, raw, raw, position))
        elif kind == "name":
            lowered = raw.lower()
            if lowered in _KEYWORDS:
                tokens.append(Token("word", lowered, lowered, position))
            else:
                tokens.append(Token("field", raw, _field_path(raw, position), position))
        position = match.end()
    tokens.append(Token("end", "", None, len(text)))
    return tokens


def _unquote(raw: str, position: int) -> str:
    body = raw[1:-1]
    if raw[0] == "'":
        body = body.replace('\\"', '"').replace("\\'", "'").replace('"', '\\"')
    try:
        return str(json.loads(f'"{body}"'))
    except ValueError:
        raise FilterError(f"bad escape in the string at position {position + 1}") from None


def _field_path(raw: str, position: int) -> tuple[str, ...]:
    parts = tuple(raw.split("."))
    if parts[0] not in ROOTS:
        raise FilterError(f"unknown field {raw!r} at position {position + 1}: fields start "
                          f"with {', '.join(ROOTS)}")
    if parts[0] == "headers" and len(parts) != 2:
        raise FilterError(f"{raw!r} at position {position + 1}: write headers.<name>")
    if parts[0] in ("key", "partition", "offset", "timestamp") and len(parts) > 1:
        raise FilterError(f"{raw!r} at position {position + 1}: {parts[0]} has no fields")
    return parts


class _Parser:
    """Recursive descent: or_expr := and_expr ("or" and_expr)*, and so on down."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at_word(self, word: str) -> bool:
        return self.current.kind == "word" and self.current.text == word

    def fail(self, expected: str) -> FilterError:
        token = self.current
        found = "the end" if token.kind == "end" else repr(token.text)
        return FilterError(f"expected {expected} at position {token.position + 1}, "
                           f"found {found}")

    def parse(self) -> Predicate:
        predicate = self.or_expr()
        if self.current.kind != "end":
            raise self.fail("'and', 'or' or the end")
        return predicate

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.at_word("or"):
            self.take()
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        return lambda record: any(part(record) for part in parts)

    def and_expr(self) -> Predicate:
        parts = [self.not_expr()]
        while self.at_word("and"):
            self.take()
            parts.append(self.not_expr())
        if len(parts) == 1:
            return parts[0]
        return lambda record: all(part(record) for part in parts)

    def not_expr(self) -> Predicate:
        if self.at_word("not"):
            self.take()
            inner = self.not_expr()
            return lambda record: not inner(record)
        return self.primary()

    def primary(self) -> Predicate:
        if self.current.kind == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise FilterError(f"more than {MAX_DEPTH} nested parentheses")
            self.take()
            inner = self.or_expr()
            if self.current.kind != ")":
                raise self.fail("')'")
            self.take()
            self.depth -= 1
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        left = self.operand()
        if self.at_word("exists"):
            self.take()
            return lambda record: left(record) is not _MISSING
        token = self.current
        if token.kind == "op" or (token.kind == "word" and token.text in _WORD_OPS):
            self.take()
            right = self.operand()
            return _compare(token.text, left, right)
        raise self.fail("an operator (==, !=, >, >=, <, <=, contains, startswith, "
                        "endswith, exists)")

    def operand(self) -> Callable[[Mapping[str, Any]], Any]:
        token = self.current
        if token.kind == "field":
            self.take()
            path = token.value
            return lambda record: resolve(record, path)
        if token.kind in ("string", "number"):
            self.take()
            constant = token.value
            return lambda record: constant
        if token.kind == "word" and token.text in ("true", "false", "null"):
            self.take()
            constant = {"true": True, "false": False, "null": None}[token.text]
            return lambda record: constant
        raise self.fail("a field (key, value.x, headers.x, ...) or a value")


def resolve(record: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at `path` in `record`, or the `_MISSING` marker."""
    current: Any = record.get(path[0], _MISSING)
    for part in path[1:]:
        if isinstance(current, Mapping):
            current = current.get(part, _MISSING)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare(op: str, left: Callable[[Any], Any], right: Callable[[Any], Any]) -> Predicate:
    def test(record: Mapping[str, Any]) -> bool:
        a, b = left(record), right(record)
        if a is _MISSING or b is _MISSING:
            return op == "!=" and (a is _MISSING) != (b is _MISSING)
        if op == "==":
            return _equal(a, b)
        if op == "!=":
            return not _equal(a, b)
        if op in ("contains", "startswith", "endswith"):
            return _text_test(op, a, b)
        if _is_number(a) and _is_number(b) or isinstance(a, str) and isinstance(b, str):
            if op == ">":
                return bool(a > b)
            if op == ">=":
                return bool(a >= b)
            if op == "<":
                return bool(a < b)
            return bool(a <= b)
        return False

    return test


def _equal(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def _text_test(op: str, a: Any, b: Any) -> bool:
    if not isinstance(b, str):
        return False
    if isinstance(a, list) and op == "contains":
        return b in a
    if not isinstance(a, str):
        return False
    if op == "contains":
        return b in a
    if op == "startswith":
        return a.startswith(b)
    return a.endswith(b)


def compile_filter(expression: str) -> Predicate:
    """Parse `expression` into a predicate over a record mapping; raise `FilterError`.

    The record mapping has `key`, `value` (decoded JSON where it is JSON), `headers`
    (name -> text), `partition`, `offset` and `timestamp`.
    """
    if len(expression) > MAX_LENGTH:
        raise FilterError(f"the filter is {len(expression)} characters long; at most "
                          f"{MAX_LENGTH}")
    if not expression.strip():
        raise FilterError("the filter is empty")
    return _Parser(tokenize(expression)).parse()
