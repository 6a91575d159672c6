"""The documentation site: complete, and built without warnings.

- every public name of ``lkanyio`` and ``lkanyio.testing`` has a docstring and a ``::: name``
  entry on a reference page (griffe reads the docstrings from ``src/`` as mkdocstrings does);
- ``scripts/docs`` builds the site with warnings as errors, and each of those names has its
  anchor in the built HTML;
"""

from __future__ import annotations

import functools
import inspect
import re
import subprocess
import types
from pathlib import Path

import griffe
import pytest

import lkanyio
import lkanyio.testing

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _public_names(module: types.ModuleType) -> list[str]:
    """The names ``tests/test_exports.py`` calls public (the package defines no ``__all__``)."""
    return sorted(
        name
        for name in dir(module)
        if not name.startswith("_")
        and not inspect.ismodule(value := getattr(module, name))
        and not isinstance(value, type(annotations))  # `from __future__ import annotations`
    )


PUBLIC = [f"lkanyio.{n}" for n in _public_names(lkanyio)] + [
    f"lkanyio.testing.{n}" for n in _public_names(lkanyio.testing)
]


def _reference_entries() -> dict[str, str]:
    """``{dotted name: page}`` for every ``::: dotted.name`` directive under docs/reference."""
    entries: dict[str, str] = {}
    for page in sorted((DOCS / "reference").glob("*.md")):
        for match in re.finditer(r"^::: *(\S+)", page.read_text(), re.MULTILINE):
            entries[match.group(1)] = page.relative_to(DOCS).as_posix()
    return entries


def test_public_names_are_found() -> None:
    assert len(PUBLIC) > 100, PUBLIC
    assert "lkanyio.connect" in PUBLIC
    assert "lkanyio.testing.LocalServer" in PUBLIC
    assert "lkanyio.testing.annotations" not in PUBLIC


@functools.cache
def _griffe_module(path: str) -> griffe.Module:
    module = griffe.load(path, search_paths=[str(ROOT / "src")])
    assert isinstance(module, griffe.Module)
    return module


@pytest.mark.parametrize("name", PUBLIC)
def test_public_name_is_documented(name: str) -> None:
    """Has a docstring (as griffe, hence the reference, sees it) and a reference entry."""
    module, attr = name.rsplit(".", 1)
    obj = _griffe_module(module)[attr]
    target = obj.final_target if obj.is_alias else obj
    assert target.docstring is not None, f"{name} has no docstring"
    assert target.docstring.value.strip(), f"{name} has an empty docstring"
    assert name in _reference_entries(), f"{name} is on no page under docs/reference/"


def test_reference_lists_only_public_names() -> None:
    stray = sorted(set(_reference_entries()) - set(PUBLIC))
    assert not stray, f"reference entries for names that are not public: {stray}"


def _build(out: Path) -> None:
    result = subprocess.run(
        [str(ROOT / "scripts" / "docs"), str(out)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    _build(out)
    return out


def test_site_builds_with_every_public_name_anchored(site: Path) -> None:
    entries = _reference_entries()
    missing = []
    for name in PUBLIC:
        html = (site / entries[name]).with_suffix(".html").read_text()
        if f'id="{name}"' not in html:
            missing.append(name)
    assert not missing, f"no anchor in the built reference for {missing}"
    assert (site / "index.html").is_file()
