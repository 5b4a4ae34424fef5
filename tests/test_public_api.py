"""The public surface: ``__all__`` is complete, nothing private leaks, layers stay layered."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import genstatem as gs
import genstatem._core as core
import genstatem.lowlevel as lowlevel
import genstatem.testing as testing

SRC = Path(gs.__file__).parent
LAYERS_ABOVE_CORE = ("statem", "supervision", "net", "raft", "testing")
PUBLIC_NAMESPACES = (gs, lowlevel, testing)


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


def _core_face() -> dict[str, object]:
    return {name: obj for name, obj in vars(core).items() if not name.startswith("_") and not inspect.ismodule(obj)}


def test_everything_the_core_exports_is_public_somewhere() -> None:
    """trio's rule: each name of _core's face is genstatem's, genstatem.lowlevel's or genstatem.testing's."""
    hidden = [
        name
        for name, obj in _core_face().items()
        if name != "annotations" and not any(getattr(ns, name, None) is obj for ns in PUBLIC_NAMESPACES)
    ]
    assert hidden == []


def test_lowlevel_all_lists_exactly_its_public_names() -> None:
    """genstatem.lowlevel's __all__ is complete, and every name in it says what it is for."""
    public = {name for name in vars(lowlevel) if not name.startswith("_") and name != "annotations"}
    assert set(lowlevel.__all__) == public
    undocumented = [
        name
        for name in lowlevel.__all__
        if (inspect.isclass(getattr(lowlevel, name)) or inspect.isfunction(getattr(lowlevel, name)))
        and not getattr(lowlevel, name).__doc__
    ]
    assert undocumented == []


def _modules_above_the_core() -> list[Path]:
    return [path for path in SRC.rglob("*.py") if "_core" not in path.relative_to(SRC).parts]


def _core_private_attributes() -> set[str]:
    """The underscore names the core's modules define or assign (dunders aside)."""
    names: set[str] = set()
    for path in (SRC / "_core").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
                names.add(node.value)  # __slots__ entries
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


def test_nothing_above_the_core_imports_a_private_core_name() -> None:
    """Above _core, every name taken from it is public, and no _core module is imported directly."""
    public = set(_core_face())
    for path in _modules_above_the_core():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module is not None:
                module = node.module.split(".")
                if "_core" not in module:
                    continue
                where = str(path.relative_to(SRC))
                assert module[-1] == "_core", (where, node.module)
                taken = {alias.name for alias in node.names}
                assert taken <= public, (where, sorted(taken - public))
            elif isinstance(node, ast.Import):
                assert not any("._core." in alias.name for alias in node.names), path


def test_nothing_above_the_core_touches_a_private_core_attribute() -> None:
    """Above _core, no code reads or writes another object's attribute that is private to the core."""
    private = _core_private_attributes()
    own: dict[Path, set[str]] = {}
    for path in _modules_above_the_core():
        tree = ast.parse(path.read_text())
        defined = {
            node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
        }
        defined |= {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
        own[path] = defined
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in private and node.attr not in own[path]:
                raise AssertionError(f"{path.relative_to(SRC)}:{node.lineno} touches the core's {node.attr}")


def test_nothing_above_the_core_names_the_runtime_internals() -> None:
    """The runtime's record of an actor (Process) and its backend stay out of the layers above."""
    internal = re.compile(r"\bProcess\b|\.backend\b")
    for path in _modules_above_the_core():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            assert not internal.search(line), f"{path.relative_to(SRC)}:{number}: {line.strip()}"


def test_the_package_is_typed() -> None:
    """py.typed ships with the package."""
    assert (SRC / "py.typed").is_file()
