"""A worker starts only on the faust-streaming, mode-streaming and aiokafka versions the
Faust boundary (streams/_faust) was verified with, unless told otherwise."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from streams import Settings, create_app
from streams._faust import versions
from streams._faust.versions import VERIFIED, check_versions, unverified
from streams.errors import UnverifiedDependencyError

ROOT = Path(__file__).resolve().parents[2]


def test_the_pinned_and_installed_versions_are_the_verified_ones() -> None:
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for distribution, version in VERIFIED.items():
        assert f"{distribution}=={version}" in pins
    assert unverified() == []
    assert check_versions(allow_unverified=False) is None


def test_another_version_is_refused_in_one_line_naming_package_versions_and_override() -> None:
    installed = {**VERIFIED, "aiokafka": "0.15.0"}
    with pytest.raises(UnverifiedDependencyError) as info:
        check_versions(allow_unverified=False, installed=installed.get)
    message = str(info.value)
    assert "\n" not in message
    assert "aiokafka 0.15.0 is installed" in message
    assert "verified with 0.14.0" in message
    assert "ALLOW_UNVERIFIED_DEPENDENCIES=1" in message
    assert "faust-streaming" not in message


def test_a_missing_package_is_named_too() -> None:
    installed = {**VERIFIED, "mode-streaming": None}
    with pytest.raises(UnverifiedDependencyError, match="mode-streaming not installed"):
        check_versions(allow_unverified=False, installed=installed.get)


def test_the_override_turns_the_refusal_into_a_warning() -> None:
    installed = {**VERIFIED, "faust-streaming": "0.16.0"}
    warning = check_versions(allow_unverified=True, installed=installed.get)
    assert warning is not None and "faust-streaming 0.16.0 is installed" in warning
    assert "ALLOW_UNVERIFIED_DEPENDENCIES" in warning


async def test_the_worker_refuses_to_start_with_one_line_and_status_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(versions, "VERIFIED", {**VERIFIED, "aiokafka": "0.13.0"})
    app = create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-versions"}),
                     agents=[], tables=[])
    with pytest.raises(SystemExit) as info:
        await app.on_first_start()
    assert info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: aiokafka 0.14.0 is installed, the Faust boundary was "
                               "verified with 0.13.0")
