"""The dependency rules of DESIGN.md §1, checked on the source: imports run one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from drivers import DRIVERS

ROOT = Path(__file__).resolve().parent.parent


def imports(package: str) -> dict[str, set[str]]:
    """Each module file of `package` → the absolute module names it imports."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[str(path.relative_to(ROOT))] = names
    return found


def protocol_packages() -> set[str]:
    """`drivers.<name>` for every driver package (the registry's driver modules)."""
    return {spec.driver.__module__.rsplit(".", 1)[0] for spec in DRIVERS.values()}


def test_the_hub_names_no_protocol() -> None:
    """The hub reaches drivers through the registry (`drivers.DRIVERS`), never by package."""
    protocols = protocol_packages()
    assert "drivers.pjlink" in protocols
    offenders = {
        module: sorted(n for n in names if n.rsplit(".", n.count(".") - 1)[0] in protocols)
        for module, names in imports("hub").items()
    }
    assert {m: n for m, n in offenders.items() if n} == {}


@pytest.mark.parametrize("other", ["hub", "simulators", "tests", "bench"])
def test_drivers_import_neither_hub_nor_simulators(other: str) -> None:
    bad = {
        module: sorted(n for n in names if n == other or n.startswith(f"{other}."))
        for module, names in imports("drivers").items()
    }
    assert {m: n for m, n in bad.items() if n} == {}


def test_simulators_take_wire_code_from_drivers_never_driver_logic() -> None:
    """A simulator may share a protocol's codec, not its driver: bugs must not be mirrored."""
    logic = {spec.driver.__module__ for spec in DRIVERS.values()} | {"drivers.base"}
    bad = {
        module: sorted(names & logic)
        for module, names in imports("simulators").items()
        if names & logic
    }
    assert bad == {}


def test_tests_take_helpers_from_helpers_and_playwright_only_in_browser_tests() -> None:
    """tests/conftest.py holds fixtures only (pytest finds them), helpers are imported from
    tests/helpers.py, and Playwright only by tests/browser.py and the browser tests
    (tests/test_ui_*.py, which conftest.py marks `browser`): everything else runs without it."""

    def browser_side(module: str) -> bool:
        name = Path(module).name
        return name == "browser.py" or name.startswith("test_ui_")

    bad = {
        module: sorted(
            n
            for n in names
            if n == "tests.conftest"
            or (n.split(".")[0] == "playwright" and not browser_side(module))
        )
        for module, names in imports("tests").items()
    }
    assert {m: n for m, n in bad.items() if n} == {}
