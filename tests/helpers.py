"""Helpers shared by tests in more than one package."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
"""The project's root directory."""

EXAMPLES = ROOT / "examples"
SCRIPTS = ROOT / "scripts"


def _load(path: Path, module_name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` (the examples are scripts, not a package)."""
    return _load(EXAMPLES / f"{name}.py", f"examples_{name}")


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` (the scripts are not a package)."""
    return _load(SCRIPTS / f"{name}.py", name)
