"""Every error the platform raises on purpose is defined in streams/errors.py."""

from __future__ import annotations

import importlib
import pkgutil

import streams
from streams.errors import StreamsError


def test_every_streams_error_lives_in_errors_py() -> None:
    for module in pkgutil.walk_packages(streams.__path__, "streams."):
        if not module.name.endswith(".__main__"):  # runs the command line
            importlib.import_module(module.name)
    families: list[type[StreamsError]] = [StreamsError]
    found = []
    while families:
        family = families.pop()
        found.append(family)
        families.extend(family.__subclasses__())
    assert {cls.__module__ for cls in found} == {"streams.errors"}, sorted(
        f"{cls.__module__}.{cls.__name__}" for cls in found if cls.__module__ != "streams.errors")
