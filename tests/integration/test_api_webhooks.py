"""Webhooks from the real server: it posts to a small receiver in the test namespace, and
lkanyio.api.WebhookReceiver verifies what arrives (and refuses a changed body or a wrong key)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import anyio
import pytest

import lkanyio
from _api_recorder import Recorder
from _util import EVENT_WAIT
from lkanyio import api
from lkanyio.testing import LocalServer, make_token

pytestmark = pytest.mark.anyio

# Clear of the worker's own server (7880-7881, UDP 50000-50999) and of the session's cluster
# (lkanyio.testing._cluster: 7890 + 10 i, UDP 51000 + 1000 i), which share this namespace.
WEBHOOK_SERVER_PORT = 7870
WEBHOOK_SERVER_UDP = (49000, 49199)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def webhook_server(livekit_server: LocalServer | None) -> Iterator[tuple[LocalServer, int]]:
    """A second server of this worker, posting its webhooks to 127.0.0.1:<port>."""
    if livekit_server is None:
        reason = "the webhook tests configure their own server: they need the local harness"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    port = _free_port()
    with LocalServer(
        node_ip=livekit_server.node_ip,
        port=WEBHOOK_SERVER_PORT,
        udp_ports=WEBHOOK_SERVER_UDP,
        webhook_urls=[f"http://127.0.0.1:{port}/webhook"],
    ) as server:
        yield server, port


async def test_room_participant_and_track_webhooks_arrive_and_verify(
    webhook_server: tuple[LocalServer, int], room_name: str
) -> None:
    server, port = webhook_server
    info = server.info
    recorder = Recorder(port=port)
    receiver = api.WebhookReceiver(api.TokenVerifier(info.api_key, info.api_secret))

    def events() -> list[api.WebhookEvent]:
        received = [receiver.receive(r.body, r.headers["authorization"]) for r in recorder.requests]
        return [e for e in received if e.room.name == room_name]

    async with anyio.create_task_group() as tg:
        await tg.start(recorder.serve)
        token = make_token(info, identity="alice", room=room_name)
        async with (
            lkanyio.connect(info.url, token) as room,
            lkanyio.AudioSource(48_000, 1) as source,
            lkanyio.LocalAudioTrack.create_audio_track("mic", source) as track,
        ):
            publication = await room.local_participant.publish_track(track)
            with anyio.fail_after(EVENT_WAIT):
                while "track_published" not in {e.event for e in events()}:
                    await anyio.sleep(0.05)
            sid = room.local_participant.sid
        # Left: the room would linger for its departure timeout; deleting it ends it now.
        async with api.LiveKitAPI(info.url, info.api_key, info.api_secret) as lkapi:
            await lkapi.room.delete_room(api.DeleteRoomRequest(room=room_name))
        with anyio.fail_after(EVENT_WAIT):
            while "room_finished" not in {e.event for e in events()}:
                await anyio.sleep(0.05)
        tg.cancel_scope.cancel()

    seen = [e.event for e in events()]
    for name in (
        "room_started",
        "participant_joined",
        "track_published",
        "participant_left",
        "room_finished",
    ):
        assert name in seen, seen
    assert seen.index("room_started") < seen.index("participant_joined")
    assert (
        seen.index("participant_joined")
        < seen.index("track_published")
        < seen.index("room_finished")
    )
    joined = next(e for e in events() if e.event == "participant_joined")
    assert (joined.participant.identity, joined.participant.sid) == ("alice", sid)
    published = next(e for e in events() if e.event == "track_published")
    assert (published.track.sid, published.track.name) == (publication.sid, "mic")

    request = next(r for r in recorder.requests if b'"track_published"' in r.body)
    assert request.headers["content-type"].startswith("application/webhook+json")
    # livekit-api's receiver reads the same event from the same webhook.
    from livekit import api as theirs

    their_event = theirs.WebhookReceiver(
        theirs.TokenVerifier(info.api_key, info.api_secret)
    ).receive(request.body.decode(), request.headers["authorization"])
    assert their_event == receiver.receive(request.body, request.headers["authorization"])

    changed = request.body.replace(b'"mic"', b'"cam"')
    assert changed != request.body
    with pytest.raises(lkanyio.WebhookError, match="the body does not match the sha256"):
        receiver.receive(changed, request.headers["authorization"])
    wrong = api.WebhookReceiver(api.TokenVerifier(info.api_key, "x" * 48))
    with pytest.raises(lkanyio.WebhookError, match="signature does not match") as refused:
        wrong.receive(request.body, request.headers["authorization"])
    assert isinstance(refused.value.__cause__, lkanyio.InvalidTokenError)
    other_key = api.WebhookReceiver(api.TokenVerifier("another-key", info.api_secret))
    with pytest.raises(lkanyio.WebhookError, match="issued by key 'lkanyio'"):
        other_key.receive(request.body, request.headers["authorization"])
