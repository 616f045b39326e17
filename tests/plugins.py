"""Installing a driver package for a test the way pip leaves it for `importlib.metadata`:
the package's modules on a path, beside a `<name>-<version>.dist-info` with its entry points."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "example-plugin"
"""The worked example of docs/writing-a-driver.md: the relay box plug-in."""


def install(project: Path, site: Path) -> None:
    """Install the project at `project` (a pyproject.toml and its packages) into `site`."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    for init in sorted(project.glob("*/__init__.py")):
        shutil.copytree(init.parent, site / init.parent.name, dirs_exist_ok=True)
    name, version = meta["name"], meta["version"]
    dist = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    groups = meta.get("entry-points", {})
    (dist / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{ep} = {target}\n" for ep, target in entries.items()) + "\n"
            for group, entries in groups.items()
        )
    )


def write_project(
    folder: Path, name: str, entry_points: dict[str, dict[str, str]], modules: dict[str, str]
) -> Path:
    """A one-package project at `folder`: a pyproject.toml declaring `entry_points`, and the
    package `name` (with `_` for `-`) of `modules` (file name → source); returns `folder`."""
    package = folder / name.replace("-", "_")
    package.mkdir(parents=True)
    for file, text in {"__init__.py": "", **modules}.items():
        (package / file).write_text(text)
    lines = ["[project]", f'name = "{name}"', 'version = "0.1.0"', ""]
    for group, entries in entry_points.items():
        lines.append(f'[project.entry-points."{group}"]')
        lines += [f'{ep} = "{target}"' for ep, target in entries.items()]
        lines.append("")
    (folder / "pyproject.toml").write_text("\n".join(lines))
    return folder
