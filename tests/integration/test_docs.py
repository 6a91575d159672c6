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

import base64
import fcntl
import inspect
import itertools
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

import lkanyio
import lkanyio.api
import lkanyio.testing
import lkanyio.worker
from _media import RATE, tone_frames, tone_share
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


PUBLIC = (
    [f"lkanyio.{n}" for n in _public_names(lkanyio)]
    + [f"lkanyio.testing.{n}" for n in _public_names(lkanyio.testing)]
    # lkanyio.worker's own names: Job, JobType, JobStatus are livekit-protocol's (generated,
    # without docstrings), WorkerError is lkanyio.WorkerError
    + [f"lkanyio.worker.{n}" for n in _public_names(lkanyio.worker)
       if n not in {"Job", "JobType", "JobStatus", "WorkerError"}]
    # lkanyio.api's own names (it also re-exports livekit-protocol's messages, as livekit-api)
    + [f"lkanyio.api.{n}" for n in lkanyio.api.__all__]
)


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


def test_every_public_name_is_documented() -> None:
    """Each has a docstring (as griffe, hence the reference, sees it) and a reference entry.

    One test for all the names, each problem listed: as one test per name (175) they cost 4.9
    CPU-s under xdist's 8 workers (measured), mostly the per-test round trip to the controller
    and griffe loading the package again in every worker; as one, 0.3-0.5 CPU-s.
    """
    import griffe  # here, not at the top: only the worker that runs this test imports it

    # one load for both: loading lkanyio.testing loads its parent package too (0.2 CPU-s each)
    package = griffe.load("lkanyio", search_paths=[str(ROOT / "src")])
    assert isinstance(package, griffe.Module)
    entries = _reference_entries()
    problems: list[str] = []
    for name in PUBLIC:
        try:
            obj = package[name.removeprefix("lkanyio.")]
        except KeyError:
            problems.append(f"{name} is not seen by griffe")
            continue
        target = obj.final_target if obj.is_alias else obj
        if target.docstring is None:
            problems.append(f"{name} has no docstring")
        elif not target.docstring.value.strip():
            problems.append(f"{name} has an empty docstring")
        if name not in entries:
            problems.append(f"{name} is on no page under docs/reference/")
    assert not problems, "\n".join(problems)


def test_reference_lists_only_public_names() -> None:
    stray = sorted(set(_reference_entries()) - set(PUBLIC))
    assert not stray, f"reference entries for names that are not public: {stray}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once per run (3.5 CPU-s) and shared by this run's xdist workers.

    The two tests that read it mostly ran on different workers, each building its own
    (measured: two builds in each of four 8-worker runs).  The first worker to ask builds it
    into the run's temp directory (a worker's basetemp is ``popen-gwN`` under it) while the
    others wait on the lock, then all read the build's outcome from a file, so each of them
    fails as the build did.
    """
    base = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        base = base.parent
    out, outcome = base / "docs-site", base / "docs-site.json"
    with (base / "docs-site.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this fails
        if not outcome.exists():
            result = subprocess.run(
                [str(ROOT / "scripts" / "docs"), str(out)],
                capture_output=True, text=True, check=False,
            )
            outcome.write_text(json.dumps([result.returncode, result.stdout + result.stderr]))
    returncode, output = json.loads(outcome.read_text())
    assert returncode == 0, output
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
#   - how-to pages define `async def main(url, <identity>_token, ...)` (or api_key, api_secret:
#     the server's), which the test calls on
#     asyncio and on trio;
#   - how-to/testing.md starts its own server in its own namespace: run as a child process.
# A ```text title="Output"``` block lists lines the page's program must print, in that order.
# A block preceded by <!-- fragment --> is not run: every line of it must appear in a block of
# the same page that is (no page uses one today).

# how-to/notebooks.md shows notebook cells (top-level await): tests/integration/test_notebook.py
# checks they are the example notebook's cells and runs that notebook in a real IPython kernel.
NOTEBOOK = "how-to/notebooks.md"
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
        if lang == "python" and page != NOTEBOOK:
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
    } - {"how-to/cluster.md", NOTEBOOK}, with_code


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
HOW_TO = ["how-to/api.md", "how-to/data-streams.md", "how-to/e2ee.md", "how-to/media.md",
          "how-to/reconnects.md", "how-to/rpc.md", "how-to/scaling.md"]


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
    given = {"url": server_info.url, "api_key": server_info.api_key,
             "api_secret": server_info.api_secret}
    args = [
        given[name] if name in given else token(name.removesuffix("_token"))
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


def _render(pages: list[Path], tmp_path: Path) -> dict[Path, tuple[str, bytes]]:
    """``{page: (its DOM once loaded, a screenshot)}`` from one headless Chromium.

    One browser for every page, driven over the DevTools protocol on a pipe (fd 3 in, fd 4 out,
    JSON messages ending in NUL), as ``--dump-dom`` and ``--screenshot`` would be but without a
    browser start per page and per output: four starts cost 3.1 CPU-s (measured), one 1.0-1.5.
    """
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: scripts/bootstrap installs it"

    def high(fd: int) -> int:  # out of the way of the 3 and 4 bash makes below
        moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(fd)
        return moved

    to_chromium, commands = map(high, os.pipe())
    replies, from_chromium = map(high, os.pipe())
    log = tmp_path / "chromium.log"
    with log.open("wb") as stderr:
        browser = subprocess.Popen(
            [
                "bash", "-c", f'exec "$@" 3<&{to_chromium} 4>&{from_chromium}', "bash",
                chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900",
                "--remote-debugging-pipe", "about:blank",
            ],
            stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
            pass_fds=(to_chromium, from_chromium),
        )
    os.close(to_chromium)
    os.close(from_chromium)
    deadline = time.monotonic() + 120  # a hang guard, as the per-run timeout was
    received = b""
    events: list[dict[str, Any]] = []
    ids = itertools.count(1)

    def receive() -> dict[str, Any]:
        nonlocal received
        while b"\0" not in received:
            ready, _, _ = select.select([replies], [], [], max(0, deadline - time.monotonic()))
            chunk = os.read(replies, 1 << 20) if ready else b""
            assert chunk, f"chromium {'exited' if ready else 'hung'}:\n{log.read_text()}"
            received += chunk
        message, received = received.split(b"\0", 1)
        return dict(json.loads(message))

    def call(method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        command: dict[str, Any] = {"id": next(ids), "method": method, "params": params}
        if session:
            command["sessionId"] = session
        os.write(commands, json.dumps(command).encode() + b"\0")
        while (message := receive()).get("id") != command["id"]:
            events.append(message)
        assert "error" not in message, (method, message)
        return dict(message["result"])

    rendered: dict[Path, tuple[str, bytes]] = {}
    try:
        target = call("Target.createTarget", url="about:blank")["targetId"]
        session = call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        call("Page.enable", session)
        for page in pages:
            events.clear()
            call("Page.navigate", session, url=page.as_uri())
            while not any(event.get("method") == "Page.loadEventFired" for event in events):
                events.append(receive())
            dom = call(
                "Runtime.evaluate", session, expression="document.documentElement.outerHTML"
            )["result"]["value"]
            shot = base64.b64decode(call("Page.captureScreenshot", session)["data"])
            rendered[page] = (str(dom), shot)
        call("Browser.close")
        assert browser.wait(30) == 0, log.read_text()
    finally:
        os.close(commands)
        os.close(replies)
        if browser.poll() is None:
            browser.kill()
            browser.wait()
    return rendered


def test_chromium_renders_home_and_api_pages(site: Path, tmp_path: Path) -> None:
    index, rooms = site / "index.html", site / "reference" / "rooms.html"
    rendered = _render([index, rooms], tmp_path)
    for page, (_, shot) in rendered.items():
        (tmp_path / (page.stem + ".png")).write_bytes(shot)

    home = rendered[index][0]
    assert 'class="md-nav' in home  # the navigation, with every section
    for section in ("Tutorials", "How-to guides", "API reference", "Performance"):
        assert section in home, section
    assert '<h1 id="lkanyio">lkanyio<' in home
    assert "joined as alice" in home  # the content, not just the theme's frame

    api = rendered[rooms][0]
    assert 'class="md-nav' in api
    assert 'id="lkanyio.connect"' in api
    assert 'id="lkanyio.Room"' in api
    assert "Rooms and participants" in api
    assert (tmp_path / "index.png").stat().st_size > 10_000  # the screenshot was painted


# --- the agent tutorial: its worker echoes a participant's audio -------------------------------


async def _hear_the_echo(page: dict[str, Any], info: ServerInfo, room: str) -> float:
    """Serve the page's entrypoint, dispatch it with the page's ``dispatch``, publish a 440 Hz
    tone as alice and return how much of the agent's echo of it, half a second from its first
    loud frame, is that tone (:func:`_media.tone_share`)."""
    from lkanyio.worker import Worker

    async def speak(source: lkanyio.AudioSource, done: anyio.Event) -> None:
        frames = tone_frames(440, 1.0)  # a whole number of periods: repeats without a seam
        for frame in itertools.cycle(frames):
            if done.is_set():
                return
            await source.capture_frame(frame)

    heard: list[int] = []
    async with Worker(page["entrypoint"], agent_name=page["AGENT"], url=info.url,
                      api_key=info.api_key, api_secret=info.api_secret,
                      drain_timeout=0) as worker, anyio.create_task_group() as tg:
        tg.start_soon(worker.serve)
        with anyio.fail_after(30):
            await worker.wait_registered()
            await page["dispatch"](room)
            token = make_token(info, identity="alice", room=room)
            async with lkanyio.connect(info.url, token) as alice, alice.events() as events, \
                    lkanyio.AudioSource(RATE, 1) as source, \
                    lkanyio.LocalAudioTrack.create_audio_track("mic", source) as mic:
                await alice.local_participant.publish_track(mic)
                done = anyio.Event()
                async with anyio.create_task_group() as speaking:
                    speaking.start_soon(speak, source, done)
                    async for event in events:
                        if (isinstance(event, lkanyio.TrackSubscribed)
                                and event.participant.identity.startswith("agent-")):
                            break
                    assert event.track.name == "echo-alice"
                    async with lkanyio.AudioStream(event.track, sample_rate=RATE,
                                                   num_channels=1) as stream:
                        async for frame_event in stream:
                            samples = list(frame_event.frame.data)
                            if heard or max(abs(s) for s in samples) > 1000:
                                heard.extend(samples)
                            if len(heard) >= RATE // 2:
                                break
                    done.set()
        tg.cancel_scope.cancel()
    return tone_share(heard, 440, pieces=True)


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_agent_tutorial_echoes_audio(
    backend: str, server_info: ServerInfo, room_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    page = "tutorials/agent.md"
    namespace: dict[str, Any] = {"__name__": "docs_agent"}  # not __main__: its main() serves
    exec(compile(_program(page, server_info.url, _token(server_info, room_name)),
                 str(DOCS / page), "exec"), namespace)
    namespace["AGENT"] = f"echo-{uuid.uuid4().hex[:10]}"  # the page's functions read it
    for name, value in (("URL", server_info.url), ("API_KEY", server_info.api_key),
                        ("API_SECRET", server_info.api_secret)):
        monkeypatch.setenv(f"LIVEKIT_{name}", value)  # the page's dispatch() reads them
    # What alice hears back is her tone (a loaded machine's concealment lowers the share).
    assert anyio.run(_hear_the_echo, namespace, server_info, room_name, backend=backend) > 0.5
    assert_no_leaks()
