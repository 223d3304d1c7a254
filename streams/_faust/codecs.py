"""Faust codecs from a pair of functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from faust.serializers import codecs
from faust.types.codecs import CodecT


class FunctionCodec(codecs.Codec):
    """A Faust codec whose `dumps`/`loads` are `dumps`/`loads` (Faust codecs override the
    private `_dumps`/`_loads`)."""

    def __init__(self, children: tuple[CodecT, ...] | None = None, *,
                 dumps: Callable[[Any], bytes], loads: Callable[[bytes], Any]) -> None:
        # in kwargs, so that Faust's `clone` (codec chaining) keeps them
        super().__init__(children, dumps=dumps, loads=loads)

    def _dumps(self, obj: Any) -> bytes:
        return cast(bytes, self.kwargs["dumps"](obj))

    def _loads(self, s: bytes) -> Any:
        return self.kwargs["loads"](s)


def register_codec(name: str, dumps: Callable[[Any], bytes],
                   loads: Callable[[bytes], Any]) -> None:
    """Register (or replace) the codec `name` in Faust's codec registry."""
    codecs.register(name, FunctionCodec(dumps=dumps, loads=loads))
