"""The documentation site: complete, built without warnings, its examples run, its pages render.

- every public name of ``lkanyio`` and ``lkanyio.testing`` has a docstring and a ``::: name``
  entry on a reference page (griffe reads the docstrings from ``src/`` as mkdocstrings does);
- ``scripts/docs`` builds the site with warnings as errors, and each of those names has its
  anchor in the built HTML;
- every fenced ``python`` block of every page runs against the local livekit-server, and prints
  what the page's ``Output`` block says (how a page's blocks become one program: below);
- headless Chromium (Debian's; scripts/bootstrap installs it) renders the built home page and an
  API page from ``file://``: navigation, headings and API anchors are in the DOM;
"""

from __future__ import annotations

import functools
import inspect
import re
import shutil
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import griffe
import pytest

import lkanyio
import lkanyio.testing
from _util import assert_no_leaks
from lkanyio.testing import ServerInfo, make_token

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _public_names(module: types.ModuleType) -> list[str]:
    """The names tests/unit/test_exports.py calls public (the package defines no ``__all__``)."""
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


# --- every Python example runs ----------------------------------------------------------------
#
# A page's ```python blocks, in order, make one program (later blocks see earlier definitions).
# In it, "ws://localhost:7880" is replaced by the test server's URL and "<token:NAME>" by a token
# for identity NAME in a fresh room.  How the program runs depends on the page:
#   - index and tutorials are whole programs: run as __main__ (they call asyncio.run, trio.run or
#     a blocking portal themselves); the Starlette one defines `app`, which the test serves with
#     uvicorn and calls over loopback HTTP;
#   - how-to pages define `async def main(url, <identity>_token, ...)`, which the test calls on
#     asyncio and on trio;
#   - how-to/testing.md starts its own server in its own namespace: run as a child process.
# A ```text title="Output"``` block lists lines the page's program must print, in that order.
# A block preceded by <!-- fragment --> is not run: every line of it must appear in a block of
# the same page that is (no page uses one today).

PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
FENCE = re.compile(r"(<!-- fragment -->\n)?```(\w+)([^\n]*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
TOKEN = re.compile(r'"<token:(\w+)>"')


def _blocks(page: str) -> tuple[list[str], list[str], list[str]]:
    """(executed python blocks, fragment blocks, expected output lines) of a page."""
    code: list[str] = []
    fragments: list[str] = []
    output: list[str] = []
    for match in FENCE.finditer((DOCS / page).read_text()):
        fragment, lang, attrs, body = match.groups()
        if lang == "python":
            (fragments if fragment else code).append(body)
        elif lang == "text" and 'title="Output"' in attrs:
            output.extend(line for line in body.splitlines() if line.strip())
    return code, fragments, output


def _program(page: str, url: str, token: Callable[[str], str]) -> str:
    code, fragments, _ = _blocks(page)
    source = "\n".join(code)
    for fragment in fragments:
        for line in fragment.splitlines():
            assert line.strip() in source, f"{page}: fragment line {line!r} is run nowhere"
    source = source.replace('"ws://localhost:7880"', repr(url))
    return TOKEN.sub(lambda m: repr(token(m.group(1))), source)


def _assert_printed(page: str, printed: str) -> None:
    expected = _blocks(page)[2]
    lines = iter(printed.splitlines())
    for want in expected:
        assert any(line == want for line in lines), f"{page} did not print {want!r}:\n{printed}"


def test_every_page_with_code_is_run() -> None:
    with_code = [page for page in PAGES if _blocks(page)[0]]
    assert set(with_code) == {
        "index.md", *(p for p in PAGES if p.startswith(("tutorials/", "how-to/")))
    } - {"how-to/cluster.md"}, with_code


def _slug(heading: str) -> str:
    """The anchor MkDocs (and GitHub) give a heading: lower case, punctuation dropped."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).strip().replace(" ", "-")


def test_the_readme_media_examples_are_run_on_the_media_page() -> None:
    """Every snippet of README's Media section is code the media how-to runs; its links land."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Media\n", 1)[1].split("\n## ", 1)[0]
    page = "how-to/media.md"
    code = "\n".join(_blocks(page)[0])
    snippets = re.findall(r"`([^`]+)`", section)
    assert len(snippets) >= 10, snippets
    missing = [snippet for snippet in snippets if snippet not in code]
    assert not missing, f"README snippets that {page} does not run: {missing}"
    headings = {_slug(h) for h in re.findall(r"^#+ (.+)$", (DOCS / page).read_text(), re.M)}
    anchors = re.findall(r"\(docs/how-to/media\.md#([\w-]+)\)", section)
    assert len(anchors) >= 7, anchors
    assert set(anchors) <= headings, sorted(set(anchors) - headings)


def _serve_and_call(app: object, path: str) -> dict[str, object]:
    import socket
    import threading

    import httpx
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    )
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for _ in range(600):  # a hang guard: until uvicorn has run the lifespan and listens
                if server.started or not thread.is_alive():
                    break
                threading.Event().wait(0.05)
            assert server.started, "uvicorn did not start"
            response = client.get(path)
            assert response.status_code == 200, response.text
            return dict(response.json())
    finally:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive()


RUN_AS_MAIN = ["index.md", "tutorials/asyncio.md", "tutorials/sync.md", "tutorials/trio.md"]
HOW_TO = ["how-to/data-streams.md", "how-to/e2ee.md", "how-to/media.md", "how-to/reconnects.md",
          "how-to/rpc.md"]


def _token(server_info: ServerInfo, room: str) -> Callable[[str], str]:
    return lambda identity: make_token(server_info, identity=identity, room=room)


@pytest.mark.parametrize("page", RUN_AS_MAIN)
def test_program_runs(
    page: str, server_info: ServerInfo, room_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _program(page, server_info.url, _token(server_info, room_name))
    exec(compile(source, str(DOCS / page), "exec"), {"__name__": "__main__"})
    _assert_printed(page, capsys.readouterr().out)
    assert_no_leaks()


def test_starlette_endpoint_runs(server_info: ServerInfo, room_name: str) -> None:
    page = "tutorials/starlette.md"
    namespace: dict[str, object] = {"__name__": "docs_starlette"}
    source = _program(page, server_info.url, _token(server_info, room_name))
    exec(compile(source, str(DOCS / page), "exec"), namespace)
    assert _serve_and_call(namespace["app"], "/announce?text=hello") == {
        "room": room_name,
        "sent": "hello",
    }
    assert_no_leaks()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("page", HOW_TO)
def test_how_to_runs(
    page: str,
    backend: str,
    server_info: ServerInfo,
    room_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    source = _program(page, server_info.url, _token(server_info, room_name))
    exec(compile(source, str(DOCS / page), "exec"), namespace)
    main = namespace["main"]
    token = _token(server_info, room_name)
    args = [
        server_info.url if name == "url" else token(name.removesuffix("_token"))
        for name in inspect.signature(main).parameters
    ]
    anyio.run(main, *args, backend=backend)
    _assert_printed(page, capsys.readouterr().out)
    assert_no_leaks()


def test_testing_how_to_runs_in_its_own_namespace() -> None:
    page = "how-to/testing.md"
    source = _program(page, "unused", lambda identity: "unused")
    result = subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    _assert_printed(page, result.stdout)


# --- the built site renders in a browser ------------------------------------------------------


def _dump_dom(page: Path, tmp_path: Path) -> str:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: scripts/bootstrap installs it"
    result = subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900",
            f"--screenshot={tmp_path / (page.stem + '.png')}", page.as_uri(),
        ],
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    result = subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri(),
        ],
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_chromium_renders_home_and_api_pages(site: Path, tmp_path: Path) -> None:
    home = _dump_dom(site / "index.html", tmp_path)
    assert 'class="md-nav' in home  # the navigation, with every section
    for section in ("Tutorials", "How-to guides", "API reference", "Performance"):
        assert section in home, section
    assert '<h1 id="lkanyio">lkanyio<' in home
    assert "joined as alice" in home  # the content, not just the theme's frame

    api = _dump_dom(site / "reference" / "rooms.html", tmp_path)
    assert 'class="md-nav' in api
    assert 'id="lkanyio.connect"' in api
    assert 'id="lkanyio.Room"' in api
    assert "Rooms and participants" in api
    assert (tmp_path / "index.png").stat().st_size > 10_000  # the screenshot was painted
