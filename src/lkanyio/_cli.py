"""The ``lkanyio`` command line (``python -m lkanyio``): tokens, rooms, WAV audio, a local server.

::

    lkanyio token --room R --identity alice          # print an access token
    lkanyio room list|create NAME|delete NAME        # the server's rooms (RoomService)
    lkanyio participants ROOM                        # who is in a room
    lkanyio dispatch create|list|delete ...          # agent dispatches of a room
    lkanyio join --room R [--json] [--show-tokens]   # print room events until interrupted
    lkanyio publish tone.wav --room R                # stream a WAV file as a microphone track
    lkanyio record alice out.wav --room R            # save alice's audio as a WAV file
    lkanyio serve-local [-- CMD ...]                 # a livekit-server in a private namespace
    lkanyio worker app:entrypoint --agent-name echo  # an agent worker (lkanyio.worker)

The server comes from ``--url``/``--api-key``/``--api-secret`` or ``LIVEKIT_URL``,
``LIVEKIT_API_KEY`` and ``LIVEKIT_API_SECRET``; ``--token`` replaces the key and secret.  Events
and tokens go to stdout, progress and status to stderr.  ``join`` leaves out what an event keeps
out of its ``repr`` (the token of ``TokenRefreshed``: a credential) unless given
``--show-tokens``.  Exit status: 0 done (an interrupt with Ctrl-C or SIGTERM is a normal end for
``join``, ``record``, ``serve-local`` and ``worker``, which drains first), 1 the command failed
(the reason is on stderr), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import functools
import importlib
import json
import logging
import os
import signal
import subprocess
import sys
import uuid
import wave
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

import anyio
from google.protobuf.json_format import MessageToDict

import lkanyio
from lkanyio import api
from lkanyio.testing import LocalServer, ServerInfo, enter_private_netns, make_token

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from google.protobuf.message import Message
if sys.version_info < (3, 11):  # pragma: no cover - exercised on 3.10 only
    from exceptiongroup import BaseExceptionGroup

__all__ = ["main"]

PROG: Final = "lkanyio"
FRAME_MS: Final = 10
_BAR_WIDTH: Final = 30


class _Fail(Exception):
    """A command failed for a reason the user can act on (printed without a traceback)."""


# --- formatting events ----------------------------------------------------------------------


def _plain(value: object) -> object:
    """``value`` as JSON-ready data: participants by identity, tracks by sid, enums by name."""
    if isinstance(value, enum.Enum):  # before int: most of lkanyio's enums are IntEnums
        return value.name
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, lkanyio.Participant):
        return value.identity
    if isinstance(value, (lkanyio.TrackPublication, lkanyio.Track)):
        return value.sid
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)


def event_record(event: object, *, show_secrets: bool = False) -> dict[str, object]:
    """A room event as a flat dict: ``{"event": "DataReceived", "participant": "alice", ...}``.

    Fields the event keeps out of its ``repr`` (``TokenRefreshed.token``, a credential valid for
    minutes) are left out unless ``show_secrets``.
    """
    record: dict[str, object] = {"event": type(event).__name__}
    if dataclasses.is_dataclass(event):
        for f in dataclasses.fields(event):
            if f.repr or show_secrets:
                record[f.name] = _plain(getattr(event, f.name))
    return record


def format_record(record: Mapping[str, object], *, as_json: bool) -> str:
    """One output line: a JSON object, or ``Name key=value ...`` with JSON-quoted values."""
    if as_json:
        return json.dumps(record, ensure_ascii=False, sort_keys=False)
    items = [(k, v) for k, v in record.items() if k != "event"]
    rest = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in items)
    return f"{record['event']} {rest}".rstrip()


# --- the server and tokens ------------------------------------------------------------------


def _server_from_args(args: argparse.Namespace, *, need_url: bool = True) -> ServerInfo:
    url = (getattr(args, "url", None) or "").strip()
    if need_url and not url:
        raise _Fail("no server: pass --url or set LIVEKIT_URL")
    key, secret = (args.api_key or "").strip(), (args.api_secret or "").strip()
    if getattr(args, "token", None) is None and not (key and secret):
        raise _Fail(
            "no API key and secret to sign a token with: pass --api-key and --api-secret, set "
            "LIVEKIT_API_KEY and LIVEKIT_API_SECRET, or pass a ready --token"
        )
    http_url = url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
    return ServerInfo(url=url, http_url=http_url, api_key=key, api_secret=secret)


def _mint(server: ServerInfo, **claims: Any) -> str:
    return make_token(server, **claims)


def _join_token(args: argparse.Namespace, server: ServerInfo, default_identity: str) -> str:
    if args.token is not None:
        return str(args.token)
    if not args.room:
        raise _Fail("pass --room (or a --token that names the room)")
    identity = args.identity or f"{default_identity}-{uuid.uuid4().hex[:6]}"
    return _mint(server, identity=identity, room=args.room)


# --- commands ---------------------------------------------------------------------------------


def _cmd_token(args: argparse.Namespace) -> int:
    server = _server_from_args(args, need_url=False)
    print(
        _mint(
            server,
            identity=args.identity,
            room=args.room,
            name=args.name,
            metadata=args.metadata,
            can_publish=not args.no_publish,
            can_subscribe=not args.no_subscribe,
            kind=args.kind,
            ttl=timedelta(seconds=args.ttl),
        )
    )
    return 0


# --- the server API (lkanyio.api) -------------------------------------------------------------


def _client(args: argparse.Namespace) -> api.LiveKitAPI:
    server = _server_from_args(args)
    try:
        return api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
    except ValueError as exc:
        raise _Fail(str(exc)) from exc


def _print_messages(messages: Sequence[Message], args: argparse.Namespace, fields: str) -> None:
    """One line per message: JSON with ``--json``, else the named fields, tab-separated."""
    for message in messages:
        if args.json:
            print(json.dumps(MessageToDict(message), ensure_ascii=False), flush=True)
        else:
            print("\t".join(str(getattr(message, f)) for f in fields.split()), flush=True)


async def _room(args: argparse.Namespace) -> int:
    async with _client(args) as lkapi:
        if args.action == "list":
            listed = await lkapi.room.list_rooms(api.ListRoomsRequest(names=args.names))
            _print_messages(listed.rooms, args, "name sid num_participants metadata")
        elif args.action == "create":
            (name,) = args.names or [None]
            if not name or len(args.names) != 1:
                raise _Fail("room create takes one room name")
            created = await lkapi.room.create_room(
                api.CreateRoomRequest(
                    name=name,
                    empty_timeout=args.empty_timeout,
                    max_participants=args.max_participants,
                    metadata=args.metadata or "",
                )
            )
            _print_messages([created], args, "name sid")
        else:
            if not args.names:
                raise _Fail("room delete takes the names of the rooms to delete")
            for name in args.names:
                await lkapi.room.delete_room(api.DeleteRoomRequest(room=name))
                print(f"{PROG}: deleted room {name!r}", file=sys.stderr, flush=True)
    return 0


async def _participants(args: argparse.Namespace) -> int:
    async with _client(args) as lkapi:
        listed = await lkapi.room.list_participants(api.ListParticipantsRequest(room=args.room))
    _print_messages(listed.participants, args, "identity sid name metadata")
    return 0


async def _dispatch(args: argparse.Namespace) -> int:
    async with _client(args) as lkapi:
        if args.action == "create":
            if not args.agent_name:
                raise _Fail("dispatch create needs --agent-name")
            created = await lkapi.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(
                    agent_name=args.agent_name, room=args.room, metadata=args.metadata or ""
                )
            )
            _print_messages([created], args, "id agent_name room metadata")
        elif args.action == "list":
            dispatches = await lkapi.agent_dispatch.list_dispatch(args.room)
            _print_messages(dispatches, args, "id agent_name room metadata")
        else:
            if not args.ids:
                raise _Fail("dispatch delete takes the ids of the dispatches to delete")
            for dispatch_id in args.ids:
                await lkapi.agent_dispatch.delete_dispatch(dispatch_id, args.room)
                print(f"{PROG}: deleted dispatch {dispatch_id}", file=sys.stderr, flush=True)
    return 0


async def _until_signal(scope: anyio.CancelScope) -> None:
    """Cancel ``scope`` at the first SIGINT or SIGTERM."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return


async def _join(args: argparse.Namespace) -> int:
    server = _server_from_args(args)
    token = _join_token(args, server, "lkanyio-join")
    say = functools.partial(print, flush=True)
    async with lkanyio.connect(server.url, token) as room, room.events() as events:
        me = room.local_participant
        joined = {
            "event": "Joined",
            "room": room.name,
            "identity": me.identity,
            "participants": sorted(room.remote_participants),
        }
        say(format_record(joined, as_json=args.json))
        async with anyio.create_task_group() as tg:
            tg.start_soon(_until_signal, tg.cancel_scope)
            async for event in events:
                record = event_record(event, show_secrets=args.show_tokens)
                say(format_record(record, as_json=args.json))
            tg.cancel_scope.cancel()  # the stream ended: we were disconnected
    return 0


def _load_entrypoint(target: str) -> Callable[..., Awaitable[None]]:
    """``MODULE:FUNCTION`` (the current directory is importable, as for ``python -m``)."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise _Fail(f"name the entrypoint as MODULE:FUNCTION, not {target!r}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        value: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as exc:
        raise _Fail(f"cannot load {target}: {exc}") from exc
    return value  # type: ignore[no-any-return]


async def _worker(args: argparse.Namespace) -> int:
    from lkanyio.worker import JobType, Worker

    server = _server_from_args(args)
    entrypoint = _load_entrypoint(args.target)
    try:
        worker = Worker(
            entrypoint, agent_name=args.agent_name, url=server.url, api_key=server.api_key,
            api_secret=server.api_secret, processes=args.processes,
            job_type={"room": JobType.JT_ROOM, "publisher": JobType.JT_PUBLISHER,
                      "participant": JobType.JT_PARTICIPANT}[args.job_type],
            drain_timeout=args.drain_timeout,
        )
    except (TypeError, ValueError) as exc:
        raise _Fail(str(exc)) from exc
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    async with worker, anyio.create_task_group() as tg:
        tg.start_soon(_until_signal, tg.cancel_scope)
        await worker.serve()  # until a signal: then it drains (bounded by --drain-timeout)
    return 0


def _read_wav(path: Path) -> tuple[int, int, bytes]:
    """``(sample_rate, num_channels, pcm)`` of a 16-bit PCM WAV file."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise _Fail(f"{path}: only 16-bit PCM WAV files, not {8 * wav.getsampwidth()}-bit")
            return wav.getframerate(), wav.getnchannels(), wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise _Fail(f"cannot read {path} as a WAV file: {exc}") from exc


def _progress(label: str, done: float, total: float) -> None:
    fraction = 1.0 if total <= 0 else min(done / total, 1.0)
    filled = round(fraction * _BAR_WIDTH)
    bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
    end = "\n" if fraction >= 1.0 else ""
    sys.stderr.write(f"\r{label} [{bar}] {fraction:4.0%} {done:.1f}/{total:.1f} s{end}")
    sys.stderr.flush()


async def _publish(args: argparse.Namespace) -> int:
    rate, channels, pcm = _read_wav(args.file)
    try:
        source = lkanyio.AudioSource(rate, channels)
    except ValueError as exc:
        raise _Fail(f"{args.file}: {exc}") from exc
    server = _server_from_args(args)
    token = _join_token(args, server, "lkanyio-publish")
    per_frame = max(rate * FRAME_MS // 1000, 1)
    step = per_frame * channels * 2  # bytes per frame
    total = len(pcm) // (channels * 2) / rate
    label = f"publishing {args.file.name}"
    async with (
        lkanyio.connect(server.url, token) as room,
        room.events() as events,
        source,
        lkanyio.LocalAudioTrack.create_audio_track(args.track_name, source) as track,
    ):
        options = lkanyio.TrackPublishOptions(source=lkanyio.TrackSource.MICROPHONE)
        await room.local_participant.publish_track(track, options)
        print(
            f"{PROG}: published {args.file} as {track.name!r} in room {room.name!r}",
            file=sys.stderr,
            flush=True,
        )
        if args.wait_for_subscriber:
            print(f"{PROG}: waiting for a subscriber", file=sys.stderr, flush=True)
            async for event in events:
                if isinstance(event, lkanyio.LocalTrackSubscribed):
                    break
            else:
                raise _Fail("disconnected before anyone subscribed")
        for index, start in enumerate(range(0, len(pcm), step)):
            chunk = pcm[start : start + step]
            samples = len(chunk) // (channels * 2)
            frame = lkanyio.AudioFrame(
                chunk, sample_rate=rate, num_channels=channels, samples_per_channel=samples
            )
            await source.capture_frame(frame)
            if not args.quiet and index % 10 == 0:
                _progress(label, start / (channels * 2) / rate, total)
        await source.wait_for_playout()
        if not args.quiet:
            _progress(label, total, total)
    return 0


def _find_audio(room: lkanyio.Room, identity: str) -> lkanyio.RemoteTrack | None:
    participant = room.remote_participants.get(identity)
    if participant is None:
        return None
    for publication in participant.track_publications.values():
        if publication.kind is lkanyio.TrackKind.AUDIO and publication.track is not None:
            return publication.track
    return None


async def _record(args: argparse.Namespace) -> int:
    server = _server_from_args(args)
    token = _join_token(args, server, "lkanyio-record")
    limit = None if args.seconds is None else round(args.seconds * args.sample_rate)
    written = 0
    with wave.open(str(args.out), "wb") as wav:
        wav.setnchannels(args.channels)
        wav.setsampwidth(2)
        wav.setframerate(args.sample_rate)
        async with lkanyio.connect(server.url, token) as room, room.events() as events:
            print(
                f"{PROG}: waiting for {args.who}'s audio in room {room.name!r}",
                file=sys.stderr,
                flush=True,
            )
            async with anyio.create_task_group() as tg:
                tg.start_soon(_until_signal, tg.cancel_scope)
                track = _find_audio(room, args.who)
                if track is None:
                    async for event in events:
                        if (
                            isinstance(event, lkanyio.TrackSubscribed)
                            and event.participant.identity == args.who
                            and event.publication.kind is lkanyio.TrackKind.AUDIO
                        ):
                            track = event.track
                            break
                    else:
                        raise _Fail(f"disconnected before {args.who}'s audio arrived")
                print(
                    f"{PROG}: recording {args.who}'s track {track.sid} to {args.out}",
                    file=sys.stderr,
                    flush=True,
                )

                async def watch() -> None:
                    # The publisher left or unpublished: the recording is complete.
                    async for event in events:
                        gone = (
                            isinstance(event, lkanyio.ParticipantDisconnected)
                            and event.participant.identity == args.who
                        ) or (isinstance(event, lkanyio.TrackUnsubscribed) and event.track is track)
                        if gone:
                            break
                    tg.cancel_scope.cancel()

                tg.start_soon(watch)
                async with lkanyio.AudioStream(
                    track, sample_rate=args.sample_rate, num_channels=args.channels
                ) as stream:
                    async for item in stream:
                        data = item.frame.data
                        count = item.frame.samples_per_channel
                        if limit is not None and written + count >= limit:
                            count = limit - written
                            data = data[: count * args.channels]
                        wav.writeframes(data.tobytes())
                        written += count
                        if limit is not None and written >= limit:
                            break
                tg.cancel_scope.cancel()
    seconds = written / args.sample_rate
    if written == 0:
        raise _Fail(f"no audio from {args.who} arrived ({args.out} is empty)")
    print(
        f"{PROG}: saved {seconds:.2f} s of {args.who}'s audio to {args.out}",
        file=sys.stderr,
        flush=True,
    )
    return 0


def _cmd_serve_local(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    try:  # both raise RuntimeError with the reason and what to do instead
        node_ip = enter_private_netns()
        server = LocalServer(node_ip=node_ip, port=args.port)
        server.start()
    except RuntimeError as exc:
        raise _Fail(str(exc)) from exc
    with server:
        env = {
            "LIVEKIT_URL": server.info.url,
            "LIVEKIT_API_KEY": server.info.api_key,
            "LIVEKIT_API_SECRET": server.info.api_secret,
        }
        if command:
            try:
                result = subprocess.run(command, env={**os.environ, **env}, check=False)
            except OSError as exc:
                raise _Fail(f"cannot run {command[0]!r}: {exc}") from exc
            except KeyboardInterrupt:
                return 128 + signal.SIGINT
            return result.returncode if result.returncode >= 0 else 128 - result.returncode
        # SIGTERM ends it normally from the moment the variables are out, so the handler goes
        # in first (a caller that read them and signalled at once killed it with -15).
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            print(  # before the variables: a caller may signal as soon as it has read them
                f"{PROG}: livekit-server is running in the private network namespace of process "
                f"{os.getpid()}, reachable only from there: run clients with "
                f"'{PROG} serve-local -- CMD ...' instead; Ctrl-C stops it",
                file=sys.stderr,
                flush=True,
            )
            for name, value in env.items():
                print(f"{name}={value}", flush=True)
            while True:
                signal.pause()
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
    return 0


# --- the parser -------------------------------------------------------------------------------


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= value <= 65534:  # the RTC TCP port is port + 1
        raise argparse.ArgumentTypeError(f"must be between 1 and 65534, got {value}")
    return value


def _add_server_args(parser: argparse.ArgumentParser, *, url: bool = True) -> None:
    group = parser.add_argument_group("server")
    if url:
        group.add_argument(
            "--url",
            default=os.environ.get("LIVEKIT_URL"),
            help="ws:// or wss:// URL (default: LIVEKIT_URL)",
        )
    group.add_argument(
        "--api-key",
        default=os.environ.get("LIVEKIT_API_KEY"),
        help="key to sign tokens with (default: LIVEKIT_API_KEY)",
    )
    group.add_argument(
        "--api-secret",
        default=os.environ.get("LIVEKIT_API_SECRET"),
        help="its secret (default: LIVEKIT_API_SECRET)",
    )


def _add_join_args(parser: argparse.ArgumentParser) -> None:
    _add_server_args(parser)
    parser.add_argument("--room", help="room to join (needed unless --token names it)")
    parser.add_argument("--identity", help="our identity (default: a unique name)")
    parser.add_argument("--token", help="a ready access token (instead of key and secret)")
    _add_backend_arg(parser)


def _add_backend_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=("asyncio", "trio"),
        default="asyncio",
        help="event loop to run on (default: asyncio)",
    )


def _add_api_args(parser: argparse.ArgumentParser) -> None:
    _add_server_args(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    _add_backend_arg(parser)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lkanyio`` (one subcommand per job)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="LiveKit from the command line, on lkanyio.",
        epilog="Server options default to LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET.",
    )
    commands = parser.add_subparsers(dest="command_name", required=True, metavar="COMMAND")

    token = commands.add_parser("token", help="print an access token")
    _add_server_args(token, url=False)
    token.add_argument("--room", required=True)
    token.add_argument("--identity", required=True)
    token.add_argument("--name")
    token.add_argument("--metadata")
    token.add_argument("--kind", choices=("standard", "agent", "egress", "ingress", "sip"))
    token.add_argument("--no-publish", action="store_true", help="without the publish grant")
    token.add_argument("--no-subscribe", action="store_true", help="without the subscribe grant")
    token.add_argument(
        "--ttl", type=_positive, default=3600.0, metavar="SECONDS", help="validity (default 3600)"
    )
    token.set_defaults(run=_cmd_token)

    room = commands.add_parser(
        "room",
        help="list, create or delete rooms (RoomService)",
        description="list [NAME ...]: the active rooms (all, or those named), one per line: "
        "name, sid, participants, metadata; create NAME: create a room (or return the existing "
        "one); delete NAME ...: delete rooms, disconnecting everyone in them.",
    )
    room.add_argument("action", choices=("list", "create", "delete"))
    room.add_argument("names", nargs="*", metavar="NAME")
    room.add_argument(
        "--empty-timeout",
        type=int,
        default=0,
        metavar="SECONDS",
        help="create: close the room this long after the last one left",
    )
    room.add_argument("--max-participants", type=int, default=0, metavar="N", help="create")
    room.add_argument("--metadata", help="create: the room's metadata")
    _add_api_args(room)
    room.set_defaults(run_async=_room)

    participants = commands.add_parser(
        "participants",
        help="list a room's participants",
        description="One line per participant: identity, sid, name, metadata.",
    )
    participants.add_argument("room", metavar="ROOM")
    _add_api_args(participants)
    participants.set_defaults(run_async=_participants)

    dispatch = commands.add_parser(
        "dispatch",
        help="create, list or delete agent dispatches of a room",
        description="create --room R --agent-name A [--metadata M]: dispatch the agent "
        "registered as A to room R; list --room R; delete ID ... --room R. Dispatches print "
        "one per line: id, agent name, room, metadata.",
    )
    dispatch.add_argument("action", choices=("create", "list", "delete"))
    dispatch.add_argument("ids", nargs="*", metavar="ID", help="delete: the dispatches' ids")
    dispatch.add_argument("--room", required=True)
    dispatch.add_argument("--agent-name", help="create: the agent to dispatch")
    dispatch.add_argument("--metadata", help="create: the job's metadata")
    _add_api_args(dispatch)
    dispatch.set_defaults(run_async=_dispatch)

    join = commands.add_parser("join", help="print room events until interrupted")
    _add_join_args(join)
    join.add_argument("--json", action="store_true", help="one JSON object per line")
    join.add_argument(
        "--show-tokens",
        action="store_true",
        help="print the access tokens the server refreshes (TokenRefreshed); hidden by default",
    )
    join.set_defaults(run_async=_join)

    publish = commands.add_parser("publish", help="stream a 16-bit WAV file as a microphone track")
    publish.add_argument("file", type=Path, metavar="FILE.wav")
    _add_join_args(publish)
    publish.add_argument("--track-name", default="microphone")
    publish.add_argument(
        "--wait-for-subscriber",
        action="store_true",
        help="start streaming once someone subscribed to the track",
    )
    publish.add_argument("--quiet", action="store_true", help="no progress bar")
    publish.set_defaults(run_async=_publish)

    record = commands.add_parser(
        "record", help="save a participant's audio as a WAV file (until it leaves or Ctrl-C)"
    )
    record.add_argument("who", metavar="IDENTITY", help="whose audio")
    record.add_argument("out", type=Path, metavar="OUT.wav")
    _add_join_args(record)
    record.add_argument(
        "--sample-rate",
        type=int,
        default=48_000,
        choices=(8000, 16000, 24000, 32000, 44100, 48000),
        help="(default 48000)",
    )
    record.add_argument("--channels", type=int, default=1, choices=(1, 2), help="(default 1)")
    record.add_argument(
        "--seconds", type=_positive, metavar="SECONDS", help="stop after this much audio"
    )
    record.set_defaults(run_async=_record)

    serve = commands.add_parser(
        "serve-local",
        help="run livekit-server in a private network namespace (and CMD in it)",
        description=(
            "Start livekit-server in a private network namespace of this process (a user "
            "namespace too when not root). With '-- CMD ...', run CMD inside it with "
            "LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET set and exit with its status; "
            "without, print those three and serve until Ctrl-C (only this process's namespace "
            "reaches the server)."
        ),
    )
    serve.add_argument("--port", type=_port, default=7880, help="signalling port (default 7880)")
    serve.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    serve.set_defaults(run=_cmd_serve_local)

    worker = commands.add_parser(
        "worker",
        help="serve an agent worker: run an entrypoint for each job the server dispatches",
        description=(
            "Register with the server as an agent worker named --agent-name and run "
            "'async def FUNCTION(job: lkanyio.worker.JobContext)' of MODULE for each job "
            "dispatched to it, until Ctrl-C or SIGTERM; then drain: take no new job, give "
            "running ones --drain-timeout seconds, cancel the rest."
        ),
    )
    worker.add_argument("target", metavar="MODULE:FUNCTION", help="the job's entrypoint")
    _add_server_args(worker)
    worker.add_argument("--agent-name", default="", help="the name dispatches address "
                        "(default: none, a job for every new room)")
    worker.add_argument("--job-type", choices=("room", "publisher", "participant"),
                        default="room", help="one job per room (default), per publisher or "
                        "per participant")
    worker.add_argument("--processes", type=int, default=0, metavar="N",
                        help="run jobs in N warm child processes (default 0: as tasks)")
    worker.add_argument("--drain-timeout", type=float, default=60.0, metavar="SECONDS",
                        help="time running jobs get to finish on Ctrl-C/SIGTERM (default 60)")
    worker.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio",
                        help="event loop to run on (default: asyncio)")
    worker.set_defaults(run_async=_worker)
    return parser


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _die(message: str) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def _explain(exc: BaseException) -> str | None:
    """The message for an expected failure (``None``: a bug, keep the traceback)."""
    if isinstance(exc, _Fail):
        return str(exc)
    if isinstance(exc, lkanyio.LiveKitError):
        return f"{type(exc).__name__}: {exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
        if run is not None:
            return run(args)
        run_async: Callable[[argparse.Namespace], Awaitable[int]] = args.run_async
        return anyio.run(run_async, args, backend=args.backend)
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except Exception as exc:
        messages = [_explain(leaf) for leaf in _leaves(exc)]
        if any(m is None for m in messages):
            raise
        _die("; ".join(m for m in messages if m))
