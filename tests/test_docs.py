"""The API reference builds (pdoc, every warning an error) with the guide on its first page and
every field of the events on theirs; the guide's sans-IO example runs as printed."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "guide.md"


def load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_build", ROOT / "docs" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def guide_section(title: str) -> str:
    text = GUIDE.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


@pytest.mark.slow
def test_the_reference_builds_without_a_warning(tmp_path: Path) -> None:
    pages = load_builder().build(tmp_path / "docs")
    names = {p.relative_to(tmp_path / "docs").as_posix() for p in pages}
    for page in ("index.html", "dhtviewer.html", "dhtviewer/api.html", "dhtviewer/blocking.html",
                 "dhtviewer/dht/events.html", "dhtviewer/dht/node.html",
                 "dhtviewer/dht/routing_policy.html", "dhtviewer/net/session.html"):
        assert page in names, page
    front = (tmp_path / "docs" / "dhtviewer.html").read_text()
    for heading in re.findall(r"^## (.+)$", GUIDE.read_text(), re.MULTILINE):
        assert heading.replace("&", "&amp;") in front, heading  # the guide is on the front page
    assert "Dht.blocking" in front
    events_page = (tmp_path / "docs" / "dhtviewer" / "dht" / "events.html").read_text()
    assert "Seconds between our query and its answer." in events_page  # a field's docstring


def test_the_guide_sans_io_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", guide_section("The sans-IO core"), re.DOTALL)
    assert len(blocks) == 1
    exec(compile(blocks[0], str(GUIDE), "exec"), {"__name__": "guide"})
    assert re.fullmatch(r"pong from [0-9a-f]{40} after \d+ ms\n", capsys.readouterr().out)


def test_the_package_docstring_includes_the_guide() -> None:
    import dhtviewer

    assert dhtviewer.__doc__ is not None
    assert ".. include:: ../docs/guide.md" in dhtviewer.__doc__
    assert (ROOT / "dhtviewer" / ".." / "docs" / "guide.md").resolve() == GUIDE


def test_no_inline_literal_of_the_reference_spans_a_line_break() -> None:
    # pdoc renders ``code`` that starts on one line and ends on the next as raw backticks.
    builder = load_builder()
    files: list[Path] = []
    for name in builder.MODULES:
        path = ROOT / Path(*name.split("."))
        if not path.is_dir():
            files.append(path.with_suffix(".py"))
        elif "__all__" in (path / "__init__.py").read_text():
            files.append(path / "__init__.py")  # pdoc documents what __all__ names, no more
        else:
            files += sorted(path.rglob("*.py"))
    broken = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and (
                isinstance(node.value.value, str)
            ):
                for literal in re.findall(r"``([^`]*?)``", node.value.value, re.DOTALL):
                    if "\n" in literal:
                        broken.append(f"{path.relative_to(ROOT)}:{node.lineno}: {literal!r}")
    assert not broken, "\n".join(broken)


def test_every_example_the_guide_names_exists() -> None:
    named = set(re.findall(r"examples/(\w+\.py)", GUIDE.read_text()))
    present = {p.name for p in (ROOT / "examples").glob("*.py")}
    assert named and named <= present, named - present
