"""The wheel ships the framework (`streams/`) and nothing of the repository's tooling."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEV_TOOLING = ("kafka_local", "devrun", "demo", "harness", "checker", "chaos")


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode()
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def build_wheel(tmp_path: Path) -> zipfile.ZipFile:
    """Build from a copy of the tracked files, with the venv's setuptools (no network)."""
    source = tmp_path / "source"
    for name in tracked_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "--wheel-dir", str(tmp_path / "dist"), str(source)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("streams_platform-*.whl")
    return zipfile.ZipFile(wheel)


def test_the_wheel_ships_streams_with_its_console_and_no_dev_tooling(tmp_path: Path) -> None:
    names = build_wheel(tmp_path).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"streams"}
    tooling = [name for name in names
               if any(tool in part for part in name.split("/") for tool in DEV_TOOLING)]
    assert tooling == []
    static = ROOT / "streams" / "web" / "console" / "static"
    expected = {path.relative_to(ROOT).as_posix() for path in static.rglob("*") if path.is_file()}
    assert expected and expected <= set(names)
    assert "streams/_faust/consumer.py" in names
