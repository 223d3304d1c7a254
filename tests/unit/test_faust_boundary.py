"""What the platform relies on in faust-streaming, mode-streaming and aiokafka still holds.

Each entry of `streams._faust.inventory` must exist in the installed packages with the
recorded signature, and the source of each function the platform copied, overrides or
calls must hash to the recorded value: after an upgrade this test fails first, naming what
to re-check. The inventory must list every private name streams/_faust uses, and
INVENTORY.md must be its current rendering.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest

from streams._faust.inventory import INVENTORY, PrivateName, render_markdown

ROOT = Path(__file__).resolve().parents[2]
BOUNDARY = ROOT / "streams" / "_faust"
UPSTREAM = ("faust", "mode", "aiokafka")


def resolve(owner: str) -> Any:
    module, _, qualname = owner.partition(":")
    found: Any = importlib.import_module(module)
    for part in filter(None, qualname.split(".")):
        found = getattr(found, part)
    return found


def assigned_on_instances(cls: type, name: str) -> bool:
    """Whether a class in `cls`'s MRO assigns or annotates `self.<name>` or `<name>: T`."""
    for base in cls.__mro__:
        try:
            tree = ast.parse(inspect.getsource(base))
        except (OSError, TypeError):
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr == name
                    and isinstance(node.ctx, ast.Store)):
                return True
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and node.target.id == name):
                return True
    return False


def function_of(entry: PrivateName) -> Any:
    found = inspect.getattr_static(resolve(entry.owner), entry.name, None)
    if isinstance(found, staticmethod | classmethod):
        found = found.__func__
    elif isinstance(found, property):
        found = found.fget
    return found if inspect.isfunction(found) else None


def recheck(entry: PrivateName) -> str:
    return f"re-check {entry.used_in}: {entry.why}"


@pytest.mark.parametrize("entry", INVENTORY, ids=lambda entry: entry.qualified)
def test_each_name_exists_with_the_recorded_signature_and_source(entry: PrivateName) -> None:
    owner = resolve(entry.owner)
    if inspect.isclass(owner):
        exists = (inspect.getattr_static(owner, entry.name, None) is not None
                  or assigned_on_instances(owner, entry.name))
    else:
        exists = hasattr(owner, entry.name)
    assert exists, f"{entry.qualified} is gone; {recheck(entry)}"
    function = function_of(entry)
    if entry.signature is not None:
        assert function is not None, f"{entry.qualified} is no longer a function; {recheck(entry)}"
        assert str(inspect.signature(function)) == entry.signature, (
            f"{entry.qualified} has a new signature; {recheck(entry)}")
    if entry.source_sha256 is not None:
        digest = hashlib.sha256(inspect.getsource(function).encode()).hexdigest()
        assert digest == entry.source_sha256, (
            f"the source of {entry.qualified} changed (sha256 {digest}); {recheck(entry)}")


def private_names_used(path: Path) -> set[str]:
    """Private names a boundary module reads, writes, overrides or imports from upstream."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif (isinstance(node, ast.ImportFrom) and node.module
              and node.module.split(".")[0] in UPSTREAM):
            names.update(alias.name for alias in node.names)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "hasattr", "setattr")
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)):
            names.add(str(node.args[1].value))
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


def test_every_private_name_used_in_the_boundary_is_in_the_inventory() -> None:
    listed = {entry.name for entry in INVENTORY}
    for path in sorted(BOUNDARY.glob("*.py")):
        missing = private_names_used(path) - listed
        assert not missing, f"{path.name} uses {sorted(missing)}: add them to inventory.py"


def test_each_entry_names_where_it_is_used() -> None:
    for entry in INVENTORY:
        path = ROOT / entry.used_in.split(" ")[0]
        assert entry.name in path.read_text(), f"{entry.qualified} not in {entry.used_in}"


def test_the_markdown_is_the_rendered_inventory() -> None:
    assert (BOUNDARY / "INVENTORY.md").read_text() == render_markdown(), (
        "run: python -m streams._faust.inventory > streams/_faust/INVENTORY.md")


def test_a_changed_upstream_source_fails_naming_what_to_recheck() -> None:
    entry = next(e for e in INVENTORY if e.name == "_drain_messages")
    changed = PrivateName(entry.owner, entry.name, entry.use, entry.used_in, entry.why,
                          entry.upstream, entry.signature, "0" * 64)
    with pytest.raises(AssertionError, match="the source of .*_drain_messages changed.*"
                                             "re-check streams/_faust/consumer.py"):
        test_each_name_exists_with_the_recorded_signature_and_source(changed)
