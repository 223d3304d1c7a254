"""No module of `streams` outside `streams/_faust/` names a private attribute of
faust-streaming, mode-streaming or aiokafka, or imports a private name from them.

The rule, checked on the source (AST) of every module under streams/ except
streams/_faust/:

- "Upstream private names" are the names starting with one underscore (dunders excluded)
  that faust, mode or aiokafka define: functions and methods, class attributes, names
  assigned as `x._name = ...` or annotated as `x._name: T`, and module-level names.
- `from faust|mode|aiokafka... import _name`, an import of a module whose dotted path has
  a private part, or `import faust._x` fails.
- `obj._name` (also `getattr`/`hasattr`/`setattr`/`delattr(obj, "_name")`) fails when
  `_name` is an upstream private name, unless `obj` is `self`/`cls` inside a class whose
  bases are all defined in streams: our own private attributes are ours to name.
- In a class that derives from a faust, mode or aiokafka class, `self._name`/`cls._name`
  and a method definition `def _name` fail when `_name` is a private name defined in a
  module of one of its upstream base classes (an override of, or reach into, their
  internals). Our own new private attributes there are fine.
- A class the check cannot import (nested in a function, or in a `__main__` module, which
  runs when imported) is taken as deriving from every upstream class.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

UPSTREAM = ("faust", "mode", "aiokafka")
ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "streams"
BOUNDARY = PACKAGE / "_faust"
REFLECTION = {"getattr", "hasattr", "setattr", "delattr"}


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def is_upstream(module: str) -> bool:
    return module.split(".")[0] in UPSTREAM


def private_names_in(source: str) -> set[str]:
    """The private names a module's source defines (see the module docstring)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if is_private(name)}


@functools.cache
def module_private_names(path: str) -> frozenset[str]:
    return frozenset(private_names_in(Path(path).read_text()))


@functools.cache
def all_upstream_private_names() -> frozenset[str]:
    names: set[str] = set()
    for package in UPSTREAM:
        root = Path(importlib.import_module(package).__file__ or "").parent
        for path in root.rglob("*.py"):
            names |= module_private_names(str(path))
    return frozenset(names)


def upstream_names_of(cls: type) -> frozenset[str] | None:
    """Private names of the modules of `cls`'s upstream bases; None if it has none."""
    paths = set()
    for base in cls.__mro__:
        if is_upstream(base.__module__):
            source = inspect.getsourcefile(base)
            if source:
                paths.add(source)
    if not paths:
        return None
    return frozenset().union(*(module_private_names(path) for path in paths))


def streams_modules() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if BOUNDARY not in path.parents:
            yield path


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


class Checker(ast.NodeVisitor):
    """Collects the violations of one module (see the module docstring)."""

    def __init__(self, path: Path, module: ModuleType | None) -> None:
        self.path = path
        self.module = module
        self.upstream = all_upstream_private_names()
        # per enclosing class: None (our own class) or its upstream bases' private names
        self.classes: list[frozenset[str] | None] = []
        self.found: list[str] = []

    def report(self, node: ast.AST, what: str) -> None:
        self.found.append(f"{self.path.name}:{getattr(node, 'lineno', 0)}: {what}")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if is_upstream(alias.name) and any(map(is_private, alias.name.split("."))):
                self.report(node, f"import {alias.name}")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level == 0 and is_upstream(module):
            private_module = any(map(is_private, module.split(".")))
            for alias in node.names:
                if private_module or is_private(alias.name):
                    self.report(node, f"from {module} import {alias.name}")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        cls = self.resolve(node)
        self.classes.append(upstream_names_of(cls) if cls is not None
                            else self.upstream)  # unresolvable: the strict rule
        self.generic_visit(node)
        self.classes.pop()

    def resolve(self, node: ast.ClassDef) -> type | None:
        found = getattr(self.module, node.name, None) if self.module else None
        return found if isinstance(found, type) else None

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        inherited = self.classes[-1] if self.classes else None
        if inherited is not None and node.name in inherited:
            self.report(node, f"def {node.name} (a private method of an upstream base)")
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.check_name(node, node.value, node.attr)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if (isinstance(node.func, ast.Name) and node.func.id in REFLECTION
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)):
            self.check_name(node, node.args[0], node.args[1].value)
        self.generic_visit(node)

    def check_name(self, node: ast.AST, owner: ast.expr, name: str) -> None:
        if not is_private(name):
            return
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls") and self.classes:
            inherited = self.classes[-1]
            if inherited is None or name not in inherited:
                return
        elif name not in self.upstream:
            return
        self.report(node, f"{ast.unparse(owner)}.{name}")


def violations(path: Path, module: ModuleType | None) -> list[str]:
    checker = Checker(path, module)
    checker.visit(ast.parse(path.read_text()))
    return checker.found


def test_the_rule_sees_private_names_of_the_upstream_packages() -> None:
    names = all_upstream_private_names()
    assert {"_drain_messages", "_gap", "_txn_manager", "_current_event"} <= names


@pytest.mark.parametrize("path", list(streams_modules()),
                         ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_private_upstream_name_outside_the_boundary(path: Path) -> None:
    # a __main__ module runs when imported: its classes, if any, get the strict rule
    module = None if path.stem == "__main__" else importlib.import_module(module_name(path))
    found = violations(path, module)
    assert not found, ("private names of faust/mode/aiokafka belong in streams/_faust/ "
                       "(and its inventory):\n" + "\n".join(found))


def test_the_checker_catches_each_kind_of_use(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    probe = tmp_path / "boundary_probe.py"
    probe.write_text(
        "from faust.streams import _current_event\n"
        "from faust.transport.consumer import Consumer\n\n\n"
        "class Own:\n"
        "    def __init__(self) -> None:\n"
        "        self._gap = 1\n\n\n"
        "class Derived(Consumer):\n"
        "    def _new_offset(self, tp):\n"
        "        return self._acked, self._own\n\n\n"
        "def reach(consumer):\n"
        "    return consumer._gap, getattr(consumer, '_committed_offset', None)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        found = violations(probe, importlib.import_module("boundary_probe"))
    finally:
        sys.modules.pop("boundary_probe", None)
    what = [line.split(": ", 1)[1] for line in found]
    assert what == [
        "from faust.streams import _current_event",
        "def _new_offset (a private method of an upstream base)",
        "self._acked",
        "consumer._gap",
        "consumer._committed_offset",
    ]
