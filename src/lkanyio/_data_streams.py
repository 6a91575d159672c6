"""Data streams: text and bytes sent in chunks to the room, received as readers per topic."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, replace
from os import PathLike, fspath
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeVar, final

import anyio

from ._checks import check_bool, check_identities, check_str, check_uint
from ._errors import (
    DataStreamError,
    DataStreamOverflowError,
    LiveKitError,
    ResourceClosedError,
    check_native,
    native_error,
)
from ._native._bridge import get_bridge
from ._native._handles import OwnedHandle
from ._native._proto import ffi_pb2
from ._resource import Resource
from ._streams import EventSender, EventStream, open_event_stream

if TYPE_CHECKING:
    from collections.abc import Sequence

    from typing_extensions import Self

    from ._port import RoomPort

__all__ = [
    "DEFAULT_MAX_BUFFERED_BYTES",
    "ByteStreamInfo",
    "ByteStreamReader",
    "ByteStreamWriter",
    "TextStreamInfo",
    "TextStreamReader",
    "TextStreamWriter",
]

T = TypeVar("T", str, bytes)
Kind = Literal["text", "byte"]

_CLOSE_WAIT = 5.0
"""Seconds a writer's exit waits (shielded) for the native core to close the stream."""


DEFAULT_MAX_BUFFERED_BYTES: Final = 16 * 1024 * 1024
"""How many bytes of an incoming stream a reader holds unread, by default (16 MiB).

Set per subscription: ``room.byte_streams(topic, max_buffered_bytes=...)``.  ``read_all``
holds the whole stream, so for it the limit bounds the stream's size."""






@final
@dataclass(frozen=True)
class TextStreamInfo:
    """What a text stream says about itself.

    Attributes:
        stream_id: the stream's id (chosen by the sender, or generated).
        topic: the topic it was sent on.
        mime_type: ``text/plain`` unless the sender said otherwise.
        timestamp: when it was opened, in milliseconds since the epoch.
        total_length: its size in bytes when the sender announced it, else ``None``.
        attributes: the sender's attributes; on a reader, once the stream has ended, also
            the attributes the sender gave when closing it.
        reply_to_id: the id of the stream this one answers, or ``None``.
        attachments: ids of the byte streams sent along with this one.
    """

    stream_id: str
    topic: str
    mime_type: str
    timestamp: int
    total_length: int | None
    attributes: Mapping[str, str]
    reply_to_id: str | None = None
    attachments: tuple[str, ...] = ()

    @property
    def size(self) -> int | None:
        """The same as :attr:`total_length` (``livekit.rtc``'s name for it)."""
        return self.total_length


@final
@dataclass(frozen=True)
class ByteStreamInfo:
    """What a byte stream says about itself (``name`` is the file name for files).

    Attributes:
        stream_id: the stream's id (chosen by the sender, or generated).
        topic: the topic it was sent on.
        mime_type: the content's MIME type.
        timestamp: when it was opened, in milliseconds since the epoch.
        total_length: its size in bytes when the sender announced it, else ``None``.
        attributes: the sender's attributes; on a reader, once the stream has ended, also
            the attributes the sender gave when closing it.
        name: the file name (``"unknown"`` when the sender gave none).
    """

    stream_id: str
    topic: str
    mime_type: str
    timestamp: int
    total_length: int | None
    attributes: Mapping[str, str]
    name: str

    @property
    def size(self) -> int | None:
        """The same as :attr:`total_length` (``livekit.rtc``'s name for it)."""
        return self.total_length


def _text_info(info: Any) -> TextStreamInfo:
    return TextStreamInfo(
        stream_id=info.stream_id,
        topic=info.topic,
        mime_type=info.mime_type,
        timestamp=info.timestamp,
        total_length=info.total_length if info.HasField("total_length") else None,
        attributes=MappingProxyType(dict(info.attributes)),
        reply_to_id=info.reply_to_stream_id or None,
        attachments=tuple(info.attached_stream_ids),
    )


def _byte_info(info: Any) -> ByteStreamInfo:
    return ByteStreamInfo(
        stream_id=info.stream_id,
        topic=info.topic,
        mime_type=info.mime_type,
        timestamp=info.timestamp,
        total_length=info.total_length if info.HasField("total_length") else None,
        attributes=MappingProxyType(dict(info.attributes)),
        name=info.name,
    )


def _size(chunk: str | bytes) -> int:
    """A chunk's UTF-8 size, at least 1: empty chunks count too, so their number is bounded."""
    return max(1, len(chunk) if isinstance(chunk, bytes) else len(chunk.encode()))


class _Inbox(Generic[T]):
    """What a reader's sink fills: the chunks, their bytes, and the native handle.

    The sink holds this, never the reader, so a reader nobody references is collected (and
    then releases its inbox) even while its stream is still open.
    """

    def __init__(self, handle_id: int, kind: Kind, limit: int) -> None:
        self.handle = OwnedHandle(handle_id)
        self.kind = kind
        self.limit = limit
        self.buffered = 0
        self.taken = False  # the native core owns the reader (see start)
        # What the writer gave when closing (the native core sends them in the stream's
        # trailer and hands them over with the end of stream).
        self.trailer: dict[str, str] = {}
        # Bounded by bytes in the sink; a chunk counts at least 1 byte, so never by this.
        self.chunks: EventStream[T]
        self.feed: EventSender[T]
        self.feed, self.chunks = open_event_stream(
            max_buffered=limit + 1, overflow="fail", what=f"{kind} stream chunks"
        )

    def start(self) -> None:
        """Bind the sink and ask the native core for every chunk as it arrives."""
        bridge = get_bridge()
        bridge.bind(self.handle.id, self._sink)
        req = ffi_pb2.FfiRequest()
        getattr(req, f"{self.kind}_read_incremental").reader_handle = self.handle.id
        try:
            bridge.request(req)
        except BaseException:
            self.release()
            raise
        # Measured: read_incremental takes the reader out of the native handle table (dropping
        # it afterwards logs "Attempted to drop unknown FFI handle"); the native task then
        # reads to the end of the stream, and its events for an unbound handle are discarded.
        self.taken = True

    def _sink(self, message: Any) -> None:
        which = message.WhichOneof("detail")
        if which == "chunk_received":
            content = message.chunk_received.content
            self.buffered += _size(content)
            if self.buffered > self.limit:
                # The native core pushes chunks and cannot be slowed down: past the limit the
                # stream is given up (the handle dropped, so the native reader is freed).
                self.release(
                    DataStreamOverflowError(
                        f"the {self.kind} stream overflowed: more than {self.limit} bytes were "
                        "waiting to be read; read faster or subscribe with a larger "
                        "max_buffered_bytes"
                    )
                )
            else:
                self.feed.send_nowait(content)
        elif which == "eos":
            get_bridge().unbind(self.handle.id)
            self.trailer = dict(message.eos.attributes)
            eos = message.eos
            # An eos whose error has no description ends the stream cleanly (as it always did).
            failed = eos.HasField("error") and eos.error.description
            self.feed.end(native_error(eos, DataStreamError) if failed else None)

    def release(self, error: BaseException | None = None) -> None:
        """Stop receiving and free the native reader (idempotent).

        With ``error``, what is buffered can still be read, then ``error`` is raised.
        """
        if not self.handle.closed:
            get_bridge().unbind(self.handle.id)
            if self.taken:
                self.handle.disown()
            else:
                self.handle.close()
        if error is not None:
            self.feed.end(error)
        else:
            self.chunks.close()


class _Reader(Resource, Generic[T]):
    """An incoming stream: iterate its chunks, or ``read_all``; closing it frees its handle.

    lkanyio reads every stream as soon as it opens, holding at most the subscription's
    ``max_buffered_bytes`` of unread chunks (the native core pushes them, so it cannot be
    slowed down); past that the stream fails with :class:`DataStreamOverflowError`.
    """

    _kind: Kind

    def __init__(self, owned: Any, sender_identity: str, max_buffered_bytes: int) -> None:
        self.sender_identity = sender_identity
        """The identity of the participant who sent the stream.

        It comes with the stream, so it is there also before the room knows the sender
        (measured: a stream from a participant in its first seconds, not announced yet by
        livekit-server's 3 s tick, names it; a data packet then does not).
        """
        self._inbox: _Inbox[T] = _Inbox(owned.handle.id, self._kind, max_buffered_bytes)
        self._consumed = False
        self._inbox.start()

    def __aiter__(self) -> _Reader[T]:
        self._consumed = True
        return self

    async def __anext__(self) -> T:
        self._consumed = True
        inbox = self._inbox
        try:
            chunk = await inbox.chunks.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None
        except anyio.ClosedResourceError:
            raise ResourceClosedError(
                "this stream reader was closed (by you, or with the subscription or room "
                "that delivered it)"
            ) from None
        inbox.buffered -= _size(chunk)
        return chunk

    async def read_all(self) -> T:
        """Wait for the whole stream and return its content.

        The whole stream is held in memory, so the subscription's ``max_buffered_bytes``
        bounds its total size.

        Raises:
            DataStreamError: the stream failed or was aborted by the sender.
            DataStreamOverflowError: the stream is larger than ``max_buffered_bytes``.
            ResourceClosedError: the reader was closed.
        """
        if self._consumed:
            raise LiveKitError("this stream has already been read")
        self._consumed = True
        parts: list[T] = []
        total = 0
        limit = self._inbox.limit
        async for chunk in self:
            total += _size(chunk)
            if total > limit:
                error = DataStreamOverflowError(
                    f"the {self._kind} stream is larger than {limit} bytes "
                    "(max_buffered_bytes), too large to read_all"
                )
                self._inbox.release(error)
                raise error
            parts.append(chunk)
        empty: T = "" if self._kind == "text" else b""  # type: ignore[assignment]
        return empty.join(parts)

    def _ended_info(self, info: Any) -> Any:
        """``info`` with the attributes the writer gave when closing (once they arrived)."""
        trailer = self._inbox.trailer
        if not trailer:
            return info
        return replace(info, attributes=MappingProxyType({**info.attributes, **trailer}))

    def close(self) -> None:
        """Stop reading and free the reader (idempotent)."""
        self._inbox.release()

    def __del__(self) -> None:
        # Dropped unread: free the native reader now, not when the sender ends the stream.
        inbox = getattr(self, "_inbox", None)
        if inbox is not None:
            inbox.release()


@final
class TextStreamReader(_Reader[str]):
    """An incoming text stream (an async iterator of text chunks)."""

    _kind: Kind = "text"

    def __init__(self, owned: Any, sender_identity: str, max_buffered_bytes: int) -> None:
        self._info = _text_info(owned.info)
        super().__init__(owned, sender_identity, max_buffered_bytes)

    @property
    def info(self) -> TextStreamInfo:
        """What the stream says about itself.

        Once the stream has ended, its attributes include those the sender gave when closing
        it (``TextStreamWriter.aclose(attributes=...)``), which win over the opening ones.
        """
        info: TextStreamInfo = self._ended_info(self._info)
        return info


@final
class ByteStreamReader(_Reader[bytes]):
    """An incoming byte stream or file (an async iterator of byte chunks)."""

    _kind: Kind = "byte"

    def __init__(self, owned: Any, sender_identity: str, max_buffered_bytes: int) -> None:
        self._info = _byte_info(owned.info)
        super().__init__(owned, sender_identity, max_buffered_bytes)

    @property
    def info(self) -> ByteStreamInfo:
        """What the stream says about itself.

        Once the stream has ended, its attributes include those the sender gave when closing
        it (``ByteStreamWriter.aclose(attributes=...)``), which win over the opening ones.
        """
        info: ByteStreamInfo = self._ended_info(self._info)
        return info


class _Subscription:
    """One ``room.text_streams``/``byte_streams`` subscription and the readers it delivered.

    The readers belong to it: closing the subscription (or leaving the room) closes every
    reader it delivered that is still open, so nothing outlives the ``async with`` blocks.
    Readers are held weakly: one dropped unread is collected and released on its own.
    """

    __slots__ = ("delivered", "feed", "kind", "limit", "topic")

    def __init__(self, kind: Kind, topic: str | None, limit: int, feed: EventSender[Any]) -> None:
        self.kind = kind
        self.topic = topic
        self.limit = limit
        self.feed = feed  # the producer end of the subscription's stream of readers
        self.delivered: weakref.WeakSet[_Reader[Any]] = weakref.WeakSet()

    def matches(self, kind: Kind, topic: str) -> bool:
        return self.kind == kind and self.topic in (None, topic)

    def reader(self, owned: Any, sender_identity: str) -> TextStreamReader | ByteStreamReader:
        """A reader for a stream that opened, already receiving, owned by this subscription."""
        reader: TextStreamReader | ByteStreamReader = (
            TextStreamReader(owned, sender_identity, self.limit)
            if self.kind == "text"
            else ByteStreamReader(owned, sender_identity, self.limit)
        )
        self.delivered.add(reader)
        return reader

    def close_readers(self) -> None:
        for reader in list(self.delivered):
            reader.close()
        self.delivered.clear()


def _attributes(out: Any, attributes: Mapping[str, str] | None) -> None:
    """Check ``attributes`` and copy them into the protobuf map ``out``."""
    if attributes is None:
        return
    if not isinstance(attributes, Mapping):
        raise TypeError(f"attributes must map str to str, not {type(attributes).__name__}")
    for key, value in attributes.items():
        out[check_str("an attribute key", key)] = check_str("an attribute value", value)


def _options(
    out: Any,
    *,
    topic: str,
    attributes: Mapping[str, str] | None,
    destination_identities: Sequence[str],
    name: str | None = None,
    mime_type: str | None = None,
    stream_id: str | None = None,
    reply_to_id: str | None = None,
    attachments: Sequence[str] = (),
    total_size: int | None = None,
    compress: bool | None = None,
    sender_identity: str | None = None,
) -> None:
    """Check the options of an outgoing stream and write them into ``out``.

    Options a kind of stream does not have (``reply_to_id`` and ``attachments`` for bytes,
    ``total_size`` for text) are never passed for it.
    """
    out.topic = check_str("topic", topic)
    out.destination_identities.extend(check_identities(destination_identities))
    _attributes(out.attributes, attributes)
    if name is not None:
        out.name = check_str("name", name)
    if mime_type is not None:
        out.mime_type = check_str("mime_type", mime_type)
    if stream_id is not None:
        # Measured: an empty id makes the native core generate one, as when none is given.
        out.id = check_str("stream_id", stream_id)
    if reply_to_id is not None:
        out.reply_to_stream_id = check_str("reply_to_id", reply_to_id)
    if isinstance(attachments, (str, bytes)):
        raise TypeError("attachments must be a sequence of stream ids, not one string")
    for attachment in attachments:
        out.attached_stream_ids.append(check_str("an attachment's stream id", attachment))
    if total_size is not None:
        out.total_length = check_uint("total_size", total_size, bits=64)
    if compress is not None:
        out.compress = check_bool("compress", compress)
    if sender_identity is not None:
        out.sender_identity = check_str("sender_identity", sender_identity)


async def send_text(port: RoomPort, text: str, **options: Any) -> TextStreamInfo:
    """See ``LocalParticipant.send_text`` (``options`` are :func:`_options`'s)."""
    req = port.request()
    msg = req.send_text
    msg.local_participant_handle = port.local_handle()
    msg.text = check_str("text", text)
    _options(msg.options, **options)
    cb = await get_bridge().request_async(req)
    check_native(cb, DataStreamError, what="send_text failed")
    return _text_info(cb.info)


async def send_bytes(
    port: RoomPort, data: bytes | str | PathLike[str], *, is_file: bool, **options: Any
) -> ByteStreamInfo:
    """See ``LocalParticipant.send_bytes`` / ``send_file`` (``options``: :func:`_options`)."""
    req = port.request()
    msg: Any
    if is_file:
        if not isinstance(data, (str, PathLike)):
            raise TypeError("send_file takes a path")
        path = fspath(data)
        if not isinstance(path, str):
            raise TypeError("send_file takes a str path, not bytes")
        msg = req.send_file
        msg.file_path = check_str("the file path", path)
    elif isinstance(data, (bytes, bytearray, memoryview)):
        msg = req.send_bytes
        msg.bytes = bytes(data)
    else:
        raise TypeError("send_bytes takes bytes")
    msg.local_participant_handle = port.local_handle()
    _options(msg.options, **options)
    cb = await get_bridge().request_async(req)
    check_native(cb, DataStreamError, what=f"{'send_file' if is_file else 'send_bytes'} failed")
    return _byte_info(cb.info)


class _Writer(Generic[T]):
    """An outgoing stream: ``await writer.write(chunk)``; leaving ``async with`` closes it.

    Chunks arrive in order.  Leaving the block closes the stream; :meth:`aclose` closes it
    earlier, with attributes for the readers.  Leaving the block on an exception closes the
    stream with that exception's type name as the reason, so readers see it end with an
    error, not a short stream that looks complete.
    """

    _kind: Kind

    def __init__(self, port: RoomPort, **options: Any) -> None:
        self._port = port
        self._handle: OwnedHandle | None = None
        self._entered = False
        self._options = options

    def _adopt_info(self, info: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_chunk(self, msg: Any, chunk: T) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        if self._entered:
            raise LiveKitError("a stream writer can be entered once")
        self._entered = True
        req = self._port.request()
        msg = getattr(req, f"{self._kind}_stream_open")
        msg.local_participant_handle = self._port.local_handle()
        _options(msg.options, **self._options)

        def adopt(cb: Any) -> OwnedHandle:
            check_native(cb, DataStreamError, what=f"opening the {self._kind} stream failed")
            self._adopt_info(cb.writer.info)
            return OwnedHandle(cb.writer.handle.id)

        def close_late(cb: Any) -> None:
            # ``cb.error`` is a message here, and a protobuf message is always truthy: ask
            # which member of the result is set (an unset error tested "not cb.error" as
            # false, so a writer opened after its opener was cancelled was never closed).
            if cb.WhichOneof("result") == "writer":
                self._close_detached(OwnedHandle(cb.writer.handle.id))

        self._handle = await get_bridge().request_async(
            req, on_deliver=adopt, on_late=close_late, on_abandon=self._close_detached
        )
        return self

    def _close_detached(self, handle: OwnedHandle) -> None:
        """End a stream whose opener was cancelled, without waiting; then release the handle.

        The receivers see the stream end with the reason ``"Cancelled"`` (not a complete, empty
        stream).  The handle stays alive until the native core has closed the stream.
        """
        req = ffi_pb2.FfiRequest()
        msg = getattr(req, f"{self._kind}_stream_close")
        msg.writer_handle = handle.id
        msg.reason = "Cancelled"
        if not get_bridge().request_detached(req, lambda _cb: handle.close()):
            handle.close()

    async def write(self, chunk: T) -> None:
        """Send one chunk (chunks arrive in order).

        Raises:
            DataStreamError: the native core or the server refused the chunk.
            LiveKitError: the writer is not open (use it inside ``async with``).
        """
        if self._handle is None:
            if self._entered:
                raise ResourceClosedError("this stream writer is closed")
            raise LiveKitError("use the writer inside 'async with'")
        req = ffi_pb2.FfiRequest()
        msg = getattr(req, f"{self._kind}_stream_write")
        msg.writer_handle = self._handle.id
        self._set_chunk(msg, chunk)
        cb = await get_bridge().request_async(req)
        check_native(cb, DataStreamError, what="writing the stream failed")

    async def aclose(
        self, *, attributes: Mapping[str, str] | None = None, reason: str = ""
    ) -> None:
        """End the stream now (leaving ``async with`` afterwards does nothing more).

        Args:
            attributes: sent with the end of the stream; readers find them merged into their
                ``info.attributes`` once the stream has ended (they win over the opening
                attributes with the same key).
            reason: a non-empty reason ends the stream with an error for the readers (their
                read raises :class:`DataStreamError` with it).

        The close is shielded from cancellation for at most a few seconds, so the native
        stream is always released.  Closing a closed writer does nothing.

        Raises:
            DataStreamError: the native core or the server refused to close the stream.
            LiveKitError: the writer was never opened (use it inside ``async with``).
        """
        if self._handle is None:
            if self._entered:
                return
            raise LiveKitError("use the writer inside 'async with'")
        req = ffi_pb2.FfiRequest()
        msg = getattr(req, f"{self._kind}_stream_close")
        msg.reason = check_str("reason", reason)
        _attributes(msg.attributes, attributes)
        await self._close(req, check=True)

    async def _close(self, req: Any, *, check: bool) -> None:
        """Send the prepared close request ``req`` for this writer, then release it."""
        handle, self._handle = self._handle, None
        if handle is None:
            return
        try:
            with anyio.move_on_after(_CLOSE_WAIT, shield=True):
                getattr(req, f"{self._kind}_stream_close").writer_handle = handle.id
                cb = await get_bridge().request_async(req)
                if check:
                    check_native(cb, DataStreamError, what="closing the stream failed")
        finally:
            handle.close()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        req = ffi_pb2.FfiRequest()
        msg = getattr(req, f"{self._kind}_stream_close")
        if exc is not None:
            msg.reason = type(exc).__name__
        await self._close(req, check=exc is None)


@final
class TextStreamWriter(_Writer[str]):
    """An outgoing text stream (from ``LocalParticipant.stream_text``).

    ``info`` is set once the stream is open (inside ``async with``).
    """

    _kind: Kind = "text"
    info: TextStreamInfo | None = None

    def _adopt_info(self, info: Any) -> None:
        self.info = _text_info(info)

    def _set_chunk(self, msg: Any, chunk: str) -> None:
        msg.text = check_str("a text chunk", chunk)


@final
class ByteStreamWriter(_Writer[bytes]):
    """An outgoing byte stream (from ``LocalParticipant.stream_bytes``).

    ``info`` is set once the stream is open (inside ``async with``).
    """

    _kind: Kind = "byte"
    info: ByteStreamInfo | None = None

    def _adopt_info(self, info: Any) -> None:
        self.info = _byte_info(info)

    def _set_chunk(self, msg: Any, chunk: bytes) -> None:
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise TypeError("write takes bytes")
        msg.bytes = bytes(chunk)
