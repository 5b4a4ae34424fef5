"""The docs' code: every ``python`` block of README.md and docs/*.md runs, and prints what the page shows after it.

The conventions (also in CONTRIBUTING.md):

- A ``python`` block is a complete program: it runs on its own, as
  ``python block.py`` in an empty folder, with warnings as errors.
- A ``text`` (or ``output``) block that follows it, with no other
  ``python`` block in between, is what it prints: the two must match.
- ``<!-- fragment -->`` on the line before a block marks a fragment: it is
  only compiled (top-level ``await`` allowed).
- ``<!-- fragment: NAME -->`` runs the block inside the page's scaffold
  ``NAME``. A scaffold is either a shown block, marked
  ``<!-- scaffold: NAME -->`` (it also runs on its own), or hidden in a
  comment, ``<!-- scaffold: NAME`` then its code then ``-->``. The fragment
  replaces the scaffold's line ``<fragment>``, indented as that line is
  (so it may ``await`` inside the scaffold's ``async def``), or is appended
  to a scaffold that has no such line.

Sybil finds the blocks and the comments (its Markdown lexers know fences,
nesting and HTML comments); this module decides what each block means.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterable, Iterator
from pathlib import Path

import attrs
import pytest
from sybil import Document, Example, Region, Sybil
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer, FencedCodeBlockLexer

import genstatem as gs

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PLACEHOLDER = "<fragment>"
RUN_TIMEOUT = 60.0
"""Seconds one block may take: far more than any block needs, so only a hang trips it."""


@attrs.frozen
class Block:
    """One ``python`` block, and what the test does with it."""

    page: str
    line: int
    code: str
    program: str | None
    """The program to run: the block itself, or the block inside its scaffold; ``None``: compile only."""
    expected: str | None
    """What the page says the block prints, or ``None`` when it does not say."""

    def describe(self) -> str:
        """``page:line``, as a test id."""
        return f"{self.page}:{self.line}"


@attrs.frozen
class _Marker:
    kind: str  # "fragment" or "scaffold"
    name: str
    source: str
    end: int


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _fill(scaffold: str, code: str) -> str:
    """The scaffold with ``code`` put in place of its ``<fragment>`` line, or after it."""
    lines = scaffold.splitlines()
    for index, line in enumerate(lines):
        if line.strip() == PLACEHOLDER:
            indent = line[: len(line) - len(line.lstrip())]
            return "\n".join([*lines[:index], textwrap.indent(code, indent), *lines[index + 1 :]]) + "\n"
    return scaffold.rstrip("\n") + "\n\n\n" + code


class DocBlocks:
    """A Sybil parser: one region per ``python`` block, its scaffold and its printed output resolved."""

    def __init__(self, root: Path = ROOT) -> None:
        self.root = root
        self.python = FencedCodeBlockLexer("python")
        self.output = FencedCodeBlockLexer(r"text|output")
        self.markers = DirectiveInHTMLCommentLexer(directive="fragment|scaffold", arguments=r"[\w.-]*")

    def __call__(self, document: Document) -> Iterable[Region]:
        """Yield a region for each ``python`` block of ``document``, in page order."""
        text = document.text
        page = Path(document.path).relative_to(self.root).as_posix()
        markers = [
            _Marker(
                str(region.lexemes["directive"]),
                str(region.lexemes["arguments"]),
                str(region.lexemes["source"]),
                text.index("-->", region.end) + len("-->"),  # Sybil's region stops before the comment's end
            )
            for region in self.markers(document)
        ]
        outputs = {region.start: str(region.lexemes["source"]) for region in self.output(document)}
        blocks = list(self.python(document))
        scaffolds: dict[str, str] = {}
        for marker in markers:
            if marker.kind == "scaffold" and marker.source.strip():
                scaffolds[marker.name] = marker.source
        for region in blocks:
            code = str(region.lexemes["source"])
            marker = next(
                (m for m in markers if m.end <= region.start and not text[m.end : region.start].strip()), None
            )
            if marker is not None and marker.kind == "scaffold" and not marker.source.strip():
                scaffolds[marker.name] = code
        for index, region in enumerate(blocks):
            code = str(region.lexemes["source"])
            line = _line_of(text, region.start)
            marker = next(
                (m for m in markers if m.end <= region.start and not text[m.end : region.start].strip()), None
            )
            program: str | None = code
            if marker is not None and marker.kind == "fragment":
                if not marker.name:
                    program = None
                elif marker.name in scaffolds:
                    program = _fill(scaffolds[marker.name], code)
                else:
                    raise ValueError(f"{page}:{line}: no scaffold {marker.name!r} on this page")
            following = blocks[index + 1].start if index + 1 < len(blocks) else len(text)
            expected = next(
                (source for start, source in sorted(outputs.items()) if region.end <= start < following),
                None,
            )
            block = Block(page, line, code, program, expected)
            yield Region(region.start, region.end, parsed=block, evaluator=evaluate)


def run(block: Block) -> str:
    """Run the block's program as ``python block.py`` in an empty folder; return what it printed."""
    assert block.program is not None
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "block.py"
        script.write_text(block.program)
        done = subprocess.run(
            [sys.executable, "-W", "error", str(script)],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    if done.returncode != 0:
        raise AssertionError(f"{block.describe()} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


def evaluate(example: Example) -> str | None:
    """Sybil's evaluator: compile a fragment; run a program and compare its output with the page's."""
    block: Block = example.parsed
    compile(block.code, block.describe(), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    if block.program is None:
        return None
    printed = run(block)
    if block.expected is None or printed.strip() == block.expected.strip():
        return None
    diff = difflib.unified_diff(
        block.expected.strip().splitlines(), printed.strip().splitlines(), "the page", "printed", lineterm=""
    )
    return f"{block.describe()} prints something else than the page shows:\n" + "\n".join(diff)


SYBIL = Sybil(parsers=[DocBlocks()], path="..")


def examples(pages: Iterable[Path]) -> Iterator[Example]:
    """Every ``python`` block of ``pages``, as a Sybil example."""
    for page in pages:
        yield from SYBIL.parse(page)


EXAMPLES = list(examples(PAGES))


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.parsed.describe() for example in EXAMPLES])
def test_each_python_block_in_the_docs_runs_and_prints_what_the_page_shows(example: Example) -> None:
    """Every ``python`` block runs on its own (or in its scaffold), and prints the ``text`` block after it."""
    example.evaluate()


def test_the_readme_and_every_page_under_docs_are_checked() -> None:
    """README.md and each docs/*.md page have their blocks collected: a new page is checked without being listed."""
    checked = {example.parsed.page for example in EXAMPLES}
    expected = {page.relative_to(ROOT).as_posix() for page in PAGES if "```python" in page.read_text()}
    assert "README.md" in checked
    assert "docs/api.md" in checked
    assert checked == expected


PAGE = """\
# A page

<!-- scaffold: greeting
import anyio

async def main():
    name = "world"
    <fragment>

anyio.run(main)
-->

```python
print("hello")
```

Some prose.

```text
hello
```

<!-- fragment: greeting -->
```python
await anyio.sleep(0)
print("hello", name)
```

```output
hello world
```

<!-- fragment -->
```python
await undefined_thing()
```

```python
print("no output shown")
```
"""


@pytest.fixture
def page_blocks(tmp_path: Path) -> list[Block]:
    """The blocks of ``PAGE``, parsed as the docs are."""
    path = tmp_path / "page.md"
    path.write_text(PAGE)
    document = Document.parse(str(path), DocBlocks(tmp_path))
    return [example.parsed for example in document]


def test_a_block_is_paired_with_the_output_block_after_it_and_fragments_with_their_scaffold(
    page_blocks: list[Block],
) -> None:
    """A program gets the next text block; a named fragment runs inside its scaffold; a bare fragment only compiles."""
    program, in_scaffold, bare, silent = page_blocks
    assert (program.program, program.expected) == (program.code, "hello\n")
    assert in_scaffold.program is not None
    assert '    name = "world"\n    await anyio.sleep(0)\n    print("hello", name)\n' in in_scaffold.program
    assert in_scaffold.expected == "hello world\n"
    assert (bare.program, bare.expected) == (None, None)
    assert (silent.program, silent.expected) == (silent.code, None)
    assert run(in_scaffold) == "hello world\n"


def test_a_block_that_prints_something_else_than_its_page_fails(tmp_path: Path) -> None:
    """The evaluator reports a difference between the printed output and the page's text block."""
    path = tmp_path / "page.md"
    path.write_text('```python\nprint("one")\n```\n\n```text\ntwo\n```\n')
    (example,) = Document.parse(str(path), DocBlocks(tmp_path))
    failure = evaluate(example)
    assert failure is not None
    assert "-two" in failure
    assert "+one" in failure


def test_a_fragment_that_does_not_compile_fails(tmp_path: Path) -> None:
    """Even a fragment that is not run must be valid Python."""
    path = tmp_path / "page.md"
    path.write_text("<!-- fragment -->\n```python\ndef broken(:\n```\n")
    (example,) = Document.parse(str(path), DocBlocks(tmp_path))
    with pytest.raises(SyntaxError):
        evaluate(example)


def test_a_fragment_naming_an_unknown_scaffold_is_an_error(tmp_path: Path) -> None:
    """A typo in a scaffold's name is caught, not silently run as something else."""
    path = tmp_path / "page.md"
    path.write_text("<!-- fragment: nowhere -->\n```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match="no scaffold 'nowhere'"):
        Document.parse(str(path), DocBlocks(tmp_path))


def test_the_api_reference_shows_every_actor_system_argument_and_remote_refs() -> None:
    """docs/api.md documents each ``ActorSystem`` keyword, ``system.remote`` and every ``ActorRef`` member."""
    text = (ROOT / "docs" / "api.md").read_text()
    heading = next(line for line in text.splitlines() if line.startswith("### `ActorSystem("))
    for parameter in inspect.signature(gs.ActorSystem).parameters:
        assert f"{parameter}=" in heading, parameter
    assert "**`system.remote(node, name) -> ActorRef`**" in text
    for member in (name for name in dir(gs.ActorRef) if not name.startswith("_")):
        assert f"`ref.{member}" in text or f"`await ref.{member}(" in text, member


def test_the_elixir_page_does_not_call_distribution_missing_and_names_the_cast_difference() -> None:
    """docs/elixir.md's "Not provided" list leaves distribution out, and its differences name ``gs.cast``'s."""
    text = (ROOT / "docs" / "elixir.md").read_text()
    differences = text[text.index("## Differences") :]
    not_provided = next(item for item in differences.split("\n- ") if item.startswith("**Not provided:**"))
    assert "distribution" not in not_provided.lower()
    assert "`gs.cast(name, msg)` raises `NoProcess`" in differences


def test_a_new_users_first_program_prints_only_what_it_prints() -> None:
    """The README's first program writes its own lines to stdout and nothing else, on either stream."""
    first = next(example.parsed for example in EXAMPLES if str(example.parsed.page).endswith("README.md"))
    assert first.program is not None
    assert first.expected is not None
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "first.py"
        script.write_text(first.program)
        done = subprocess.run(
            [sys.executable, str(script)], cwd=folder, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=True
        )
    assert (done.stdout.strip(), done.stderr) == (first.expected.strip(), "")
