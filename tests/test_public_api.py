"""The public surface: ``__all__`` is complete, nothing private leaks, layers stay layered."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import genstatem as gs

SRC = Path(gs.__file__).parent
LAYERS_ABOVE_CORE = ("statem", "supervision", "net", "raft", "storage", "testing")


def test_all_lists_exactly_the_public_names() -> None:
    """Every public name of the package is in __all__, and everything in __all__ exists."""
    public = {name for name in vars(gs) if not name.startswith("_") and not inspect.ismodule(getattr(gs, name))}
    public.discard("annotations")
    assert set(gs.__all__) == public
    assert len(gs.__all__) == len(set(gs.__all__))


def test_public_names_come_from_private_modules_of_the_package() -> None:
    """Public classes and functions live in genstatem's own modules; no private name is exported."""
    for name in gs.__all__:
        assert not name.startswith("_")
        obj = getattr(gs, name)
        module = getattr(obj, "__module__", "") or ""
        assert module.startswith("genstatem."), (name, module)


def test_every_public_name_has_a_docstring() -> None:
    """Every public class and function says what it is for."""
    missing = [name for name in gs.__all__ if callable(getattr(gs, name)) and not getattr(gs, name).__doc__]
    assert missing == []


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def test_the_core_imports_nothing_from_the_layers_above_it() -> None:
    """_core is self-contained: it never imports statem, supervision, net, raft or testing."""
    for path in (SRC / "_core").glob("*.py"):
        for module in _imports(path):
            parts = module.lstrip(".").split(".")
            assert not any(layer in parts for layer in LAYERS_ABOVE_CORE), (path.name, module)
            if module.startswith(".."):
                raise AssertionError(f"{path.name} reaches out of _core with {module!r}")


def test_layers_use_each_others_api_not_their_private_modules() -> None:
    """A layer imports other layers through their __init__, never their underscore modules."""
    for layer in LAYERS_ABOVE_CORE:
        for path in (SRC / layer).glob("*.py") if (SRC / layer).is_dir() else ():
            for module in _imports(path):
                parts = module.lstrip(".").split(".")
                reaches_out = module.startswith("..") or module.startswith("genstatem.")
                private = [part for part in parts[1:] if part.startswith("_")] if reaches_out else []
                assert not private, (f"{layer}/{path.name}", module)


def test_the_package_is_typed() -> None:
    """py.typed ships with the package."""
    assert (SRC / "py.typed").is_file()
