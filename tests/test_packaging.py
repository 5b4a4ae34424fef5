"""What the wheel ships: its license, and no module that needs a test tool the package does not depend on."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
TEST_TOOLS = ("pytest", "hypothesis")


def shipped_modules() -> dict[str, Path]:
    """Each ``.py`` file the wheel holds, by its path in the wheel, under hatch's rules in pyproject.toml."""
    wheel = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]
    shipped: dict[str, Path] = {}
    for package in wheel["packages"]:
        root = ROOT / package
        for path in root.rglob("*.py"):
            shipped[f"{root.name}/{path.relative_to(root).as_posix()}"] = path
    for source, target in wheel.get("force-include", {}).items():
        origin = ROOT / source
        if origin.is_dir():
            for path in origin.rglob("*.py"):
                shipped[f"{target}/{path.relative_to(origin).as_posix()}"] = path
        elif origin.suffix == ".py":
            shipped[target] = origin
    return shipped


def imported_top_level_names(path: Path) -> set[str]:
    """The top-level package of every module ``path`` imports, wherever the import stands."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.add(node.module.partition(".")[0])
    return names


def test_the_wheel_ships_no_module_that_imports_a_test_tool_it_does_not_depend_on() -> None:
    """No shipped module imports pytest or hypothesis: neither is a dependency, so the import would fail."""
    dependencies = {re.split(r"[<>=!~\[; ]", requirement)[0] for requirement in PYPROJECT["project"]["dependencies"]}
    shipped = shipped_modules()
    assert "genstatem/__init__.py" in shipped
    assert "genstatem/_examples/code_lock.py" in shipped  # python -m genstatem code-lock runs it
    offenders = {
        name: sorted(imported_top_level_names(path).intersection(TEST_TOOLS).difference(dependencies))
        for name, path in shipped.items()
    }
    assert {name: tools for name, tools in offenders.items() if tools} == {}


def test_the_license_the_package_declares_is_in_the_repository() -> None:
    """pyproject.toml says Apache-2.0, and LICENSE holds that license's text."""
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
