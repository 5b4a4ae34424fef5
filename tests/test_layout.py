"""Size rules for the source: files small enough to read, functions short enough to see whole."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import genstatem as gs

SRC = Path(gs.__file__).parent
MAX_FILE_LINES = 650
MAX_FUNCTION_LINES = 50

LONG_FILES: dict[str, str] = {}
"""Source files allowed over ``MAX_FILE_LINES``, each with the reason."""

LONG_FUNCTIONS = {
    "_demo_raft.py::_story": "the demo's script: its sections read best in the order they print",
    "_cli/_cluster_demo.py::demo": "the cluster demo's script: its steps read best in the order they print",
    "net/_codec.py::Codec._pack": "the encoder's hot path: one Python frame per level of nesting",
}
"""Functions allowed over ``MAX_FUNCTION_LINES`` (docstring not counted), each with the reason."""


def _sources() -> Iterator[tuple[str, str]]:
    for path in sorted(SRC.rglob("*.py")):
        yield path.relative_to(SRC).as_posix(), path.read_text(encoding="utf-8")


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + node.name, node
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")


def _length(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    assert function.end_lineno is not None
    lines = function.end_lineno - function.lineno + 1
    first = function.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        assert first.end_lineno is not None
        lines -= first.end_lineno - first.lineno + 1
    return lines


def _long_files() -> set[str]:
    return {name for name, text in _sources() if len(text.splitlines()) > MAX_FILE_LINES}


def _long_functions() -> set[str]:
    return {
        f"{name}::{qualname}"
        for name, text in _sources()
        for qualname, function in _functions(ast.parse(text))
        if _length(function) > MAX_FUNCTION_LINES
    }


def test_no_source_file_is_over_the_line_limit_unless_listed() -> None:
    """Every file in src/ is at most MAX_FILE_LINES long, but for the listed ones, which still are over."""
    assert _long_files() == set(LONG_FILES)


def test_no_function_is_over_the_line_limit_unless_listed_with_a_reason() -> None:
    """Every function in src/ is at most MAX_FUNCTION_LINES long, but for the listed ones, which still are over."""
    assert _long_functions() == set(LONG_FUNCTIONS)
    assert all(reason for reason in {**LONG_FILES, **LONG_FUNCTIONS}.values())
