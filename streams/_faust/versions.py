"""The dependency versions the Faust boundary was verified with, checked at worker start.

Every module of `streams._faust` relies on private names of these packages (listed in
`streams._faust.inventory`); another version may have renamed or changed any of them.
A worker refuses to start on a version not listed here unless
ALLOW_UNVERIFIED_DEPENDENCIES is set, for someone testing an upgrade (who then runs
tests/unit/test_faust_boundary.py and updates the inventory).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import metadata

from streams.errors import UnverifiedDependencyError

#: Distribution name -> the version the inventory was verified with.
VERIFIED: Mapping[str, str] = {
    "faust-streaming": "0.15.3",
    "mode-streaming": "0.7.1",
    "aiokafka": "0.14.0",
}

OVERRIDE_SETTING = "ALLOW_UNVERIFIED_DEPENDENCIES"


def installed_version(distribution: str) -> str | None:
    """The installed version of `distribution`, None if it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def unverified(installed: Callable[[str], str | None] = installed_version,
               ) -> list[tuple[str, str | None, str]]:
    """(distribution, installed version, verified version) for each one that differs."""
    found = []
    for distribution, verified in VERIFIED.items():
        version = installed(distribution)
        if version != verified:
            found.append((distribution, version, verified))
    return found


def check_versions(*, allow_unverified: bool,
                   installed: Callable[[str], str | None] = installed_version) -> str | None:
    """Raise `UnverifiedDependencyError` (one line) if a dependency is not at its verified
    version; with `allow_unverified`, return that line as a warning instead (None if all
    match)."""
    differing = unverified(installed)
    if not differing:
        return None
    found = "; ".join(f"{name} {version or 'not installed'} is installed, the Faust boundary "
                      f"was verified with {verified}" for name, version, verified in differing)
    if allow_unverified:
        return f"{found} ({OVERRIDE_SETTING} is set: starting anyway)"
    raise UnverifiedDependencyError(
        f"{found}: install the verified versions, or set {OVERRIDE_SETTING}=1 to start "
        "anyway while testing an upgrade (then run tests/unit/test_faust_boundary.py)")
