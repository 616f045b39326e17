"""The registries of drivers and simulators: built-ins, then entry points of installed packages,
each one that cannot be used left out with the reason (packages installed on a temporary path)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers import BUILT_IN, DRIVERS, DriverSpec
from drivers.errors import ConfigError
from drivers.registry import DRIVER_GROUP, SIMULATOR_GROUP, Origin, Registry
from drivers.spec import plugin_driver
from hub.config import simulator_for
from simulators import BUILT_IN as BUILT_IN_SIMULATORS
from simulators import SIMULATORS
from simulators.plugin import plugin_simulator
from tests.plugins import install, write_project

Installer = Callable[[str, dict[str, str], str], None]

# A driver package written in a few lines, with the names of its parts as placeholders.
DRIVER = """\
from typing import Literal

from drivers.config import DeviceConfig
from drivers.pjlink.driver import PjlinkDriver
from drivers.spec import DriverSpec


class Config(DeviceConfig):
    driver: Literal["{tag}"]


class Driver(PjlinkDriver):
    name = "{name}"


SPEC = DriverSpec(Driver, Config)


def make_spec() -> DriverSpec:
    return SPEC
"""
SIMULATOR = """\
from simulators.pjlink import PjlinkSimulator


class Simulator(PjlinkSimulator):
    kind = "{kind}"
"""


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Installer]:
    """`installed(package, entry_points, source)`: a package on sys.path, as pip leaves it."""
    site = tmp_path / "site"
    monkeypatch.syspath_prepend(str(site))
    packages: list[str] = []

    def add(package: str, entry_points: dict[str, str], source: str) -> None:
        groups: dict[str, dict[str, str]] = {}
        for name, target in entry_points.items():
            group, _, ep = name.partition(":")
            groups.setdefault(group, {})[ep] = target
        project = write_project(tmp_path / package, package, groups, {"__init__.py": source})
        install(project, site)
        packages.append(package)

    yield add
    for package in packages:
        sys.modules.pop(package, None)


def drivers() -> Registry[DriverSpec]:
    """A registry like `DRIVERS`, loading the entry points installed now."""
    return Registry(DRIVER_GROUP, "driver", BUILT_IN, plugin_driver)


def simulators() -> Registry[Any]:
    return Registry(SIMULATOR_GROUP, "simulator", BUILT_IN_SIMULATORS, plugin_simulator)


def test_the_registries_hold_the_built_ins() -> None:
    assert list(BUILT_IN) == list(DRIVERS)[: len(BUILT_IN)]
    assert DRIVERS.origin("pjlink") == Origin() and str(DRIVERS.origin("pjlink")) == "built-in"
    assert SIMULATORS["pjlink"] is BUILT_IN_SIMULATORS["pjlink"]


def test_a_package_adds_a_driver_and_its_simulator_by_entry_point_name(
    installed: Installer,
) -> None:
    installed(
        "acme_one",
        {
            f"{DRIVER_GROUP}:acme": "acme_one:SPEC",
            f"{DRIVER_GROUP}:acme2": "acme_one:make_spec",
            f"{SIMULATOR_GROUP}:acme": "acme_one:Simulator",
        },
        DRIVER.format(tag="acme", name="acme") + SIMULATOR.format(kind="acme"),
    )
    registry = drivers()
    assert registry["acme"].driver.__module__ == "acme_one"
    assert registry.origin("acme") == Origin("acme_one", "0.1.0", "acme_one:SPEC")
    assert str(registry.origin("acme")) == "package acme_one 0.1.0"
    assert [f.name for f in registry.failures] == ["acme2"]  # a function: called, then checked
    assert registry.failures[0].error == (
        "acme_one.Driver.name is 'acme', the entry point's is 'acme2'"
    )
    sims = simulators()
    assert sims["acme"].__module__ == "acme_one" and sims.failures == []


def test_a_function_returning_a_spec_is_called(installed: Installer) -> None:
    installed(
        "acme_two",
        {f"{DRIVER_GROUP}:two": "acme_two:make_spec"},
        DRIVER.format(tag="two", name="two"),
    )
    assert drivers()["two"].driver.name == "two"


def test_a_plugin_that_fails_to_import_is_left_out_with_its_error(installed: Installer) -> None:
    installed("acme_broken", {f"{DRIVER_GROUP}:broken": "acme_broken:SPEC"}, "1 / 0\n")
    registry = drivers()
    assert "broken" not in registry and list(registry) == list(BUILT_IN)
    failure = registry.failure("broken")
    assert failure is not None
    assert str(failure) == (
        "driver plug-in 'broken' (package acme_broken 0.1.0, entry point acme_broken:SPEC) "
        "failed to load: ZeroDivisionError: division by zero"
    )
    assert "Traceback" in failure.details and "1 / 0" in failure.details
    assert failure.as_json()["origin"]["package"] == "acme_broken"


@pytest.mark.parametrize(
    ("target", "source", "error"),
    [
        (
            "acme_bad:SPEC",
            "SPEC = 42\n",
            "expected a DriverSpec (or a function returning one), got 42",
        ),
        (
            "acme_bad:Driver",
            DRIVER.format(tag="bad", name="bad"),
            "expected a DriverSpec (or a function returning one), got <class 'acme_bad.Driver'>",
        ),
        (
            "acme_bad:SPEC",
            DRIVER.format(tag="other", name="bad"),
            "acme_bad.Config.driver must be declared `driver: Literal['bad']`",
        ),
        (
            "acme_bad:SPEC",
            "from drivers import DriverSpec, DeviceConfig\nSPEC = DriverSpec(DeviceConfig, DeviceConfig)\n",
            "DriverSpec.driver must be a Driver subclass, got <class 'drivers.config.DeviceConfig'>",
        ),
        (
            "acme_bad:SPEC",
            "from drivers import DriverSpec, Driver, DeviceConfig\n"
            "class Bare(Driver):\n    name = 'bad'\n"
            "SPEC = DriverSpec(Bare, DeviceConfig)\n",
            "acme_bad.Bare is abstract (it does not define create_framer)",
        ),
        ("acme_bad:NOTHING", "", "AttributeError: module 'acme_bad' has no attribute 'NOTHING'"),
        (
            "acme_bad:SPEC",
            DRIVER.format(tag="bad", name="bad") + "from pydantic import ConfigDict\n"
            "from drivers.actions import Args, action\n"
            "class Thing: ...\n"
            "class Poke(Args):\n"
            "    model_config = ConfigDict(arbitrary_types_allowed=True)\n"
            "    thing: Thing\n"
            "class Driver(Driver):\n"
            "    @action(Poke)\n"
            "    async def poke(self, args: Poke) -> None: ...\n"
            "SPEC = DriverSpec(Driver, Config)\n",
            "a JSON Schema of acme_bad.Driver cannot be built: Cannot generate a JsonSchema for "
            "core_schema.IsInstanceSchema (<class 'acme_bad.Thing'>)",
        ),
    ],
)
def test_an_entry_point_that_is_not_a_driver_is_left_out_saying_why(
    installed: Installer, target: str, source: str, error: str
) -> None:
    installed("acme_bad", {f"{DRIVER_GROUP}:bad": target}, source)
    registry = drivers()
    assert "bad" not in registry
    assert [(f.name, f.error) for f in registry.failures] == [("bad", error)]


def test_a_built_in_name_is_refused_and_the_built_in_kept(installed: Installer) -> None:
    installed(
        "acme_clash",
        {f"{DRIVER_GROUP}:pjlink": "acme_clash:SPEC", f"{SIMULATOR_GROUP}:pjlink": "acme_clash:X"},
        "raise AssertionError('never imported')\n",
    )
    registry, sims = drivers(), simulators()
    assert registry["pjlink"] is BUILT_IN["pjlink"] and registry.origin("pjlink") == Origin()
    assert registry.failure("pjlink") is None  # the name works: nothing is missing
    assert [f.error for f in registry.failures] == [
        "the name 'pjlink' is taken by the built-in driver, which is used"
    ]
    assert [f.error for f in sims.failures] == [
        "the name 'pjlink' is taken by the built-in simulator, which is used"
    ]


def test_two_packages_with_one_name_the_first_is_used(installed: Installer) -> None:
    source = DRIVER.format(tag="twin", name="twin")
    installed("acme_twin_a", {f"{DRIVER_GROUP}:twin": "acme_twin_a:SPEC"}, source)
    installed("acme_twin_b", {f"{DRIVER_GROUP}:twin": "acme_twin_b:SPEC"}, source)
    registry = drivers()
    first = registry.origin("twin").package
    assert first in ("acme_twin_a", "acme_twin_b")
    [failure] = registry.failures
    assert failure.origin.package != first
    assert failure.error == f"the name 'twin' is taken by package {first} 0.1.0, which is used"


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("X = 1\n", "expected a Simulator subclass, got 1"),
        (
            SIMULATOR.format(kind="other"),
            "acme_sim.Simulator.kind is 'other', the entry point's is 'sim'",
        ),
        (
            "from simulators.base import Simulator\nclass X(Simulator):\n    kind = 'sim'\n",
            "acme_sim.X is abstract (it does not define device_error, handle_frame, reset_state)",
        ),
    ],
)
def test_an_entry_point_that_is_not_a_simulator_is_left_out_saying_why(
    installed: Installer, source: str, error: str
) -> None:
    target = "acme_sim:Simulator" if "class Simulator" in source else "acme_sim:X"
    installed("acme_sim", {f"{SIMULATOR_GROUP}:sim": target}, source)
    sims = simulators()
    assert "sim" not in sims and [f.error for f in sims.failures] == [error]


def test_plugins_load_once_on_first_use(installed: Installer) -> None:
    registry = drivers()
    installed("acme_late", {f"{DRIVER_GROUP}:late": "acme_late:SPEC"}, "1 / 0\n")
    assert len(registry.failures) == 1  # loaded now, the package being installed
    installed("acme_later", {f"{DRIVER_GROUP}:later": "acme_later:SPEC"}, "1 / 0\n")
    assert [f.name for f in registry.failures] == ["late"]  # not looked for again


def test_a_driver_without_a_simulator_says_so() -> None:
    with pytest.raises(ConfigError) as caught:
        simulator_for("nothing")
    assert str(caught.value) == (
        "driver 'nothing' has no simulator: no avhub.simulators entry point is named 'nothing'"
    )
