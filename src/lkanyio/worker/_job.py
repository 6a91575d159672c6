"""JobContext: what a job's entrypoint gets (the protocol's Job, and how to join its room)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final, final

import anyio
from livekit.protocol import agent as pb

from .. import connect
from .._errors import ConnectionLostError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from livekit.protocol import models

    from .. import Room, RoomOptions

__all__ = ["JobContext", "describe"]


_MAX_ERROR: Final = 4096
"""Characters of an error's text a job's status carries (the full text is in the log)."""


def describe(exc: BaseException) -> str:
    """An error as a job's status shows it: ``"ValueError: the text"``, at most 4 KiB.

    A job process sends it to the worker on one line, the worker on to the server.
    """
    text = str(exc)
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if len(text) > _MAX_ERROR:
        text = f"{text[:_MAX_ERROR - 32]}... ({len(text)} characters)"
    return text


@final
class JobContext:
    """One job the server assigned to this worker: ``async def entrypoint(job: JobContext)``.

    ::

        async def entrypoint(job: JobContext) -> None:
            async with job.connect() as room:
                ...  # the job runs while this block does

    The job ends when the entrypoint returns (reported as success) or raises (reported as
    failed, with the error's text; the worker carries on).  The server ending the job (its
    dispatch deleted, its participant removed), the job's room ending, or the worker's drain
    running out of time cancel the entrypoint.

    Attributes:
        job: the protocol's ``Job`` (``job.room.name``, ``job.metadata``, ``job.participant`` for
            publisher and participant jobs, ``job.dispatch_id``, ...).
        url: the server URL the job joins (the assignment's, else the worker's).
        worker_id: the id the server gave the worker's registration that took the job.
    """

    def __init__(
        self,
        job: pb.Job,
        *,
        url: str,
        token: str,
        worker_id: str,
        scope: anyio.CancelScope,
        report: Callable[[pb.JobStatus, str], Awaitable[None]] | None = None,
    ) -> None:
        self.job = job
        self.url = url
        self.worker_id = worker_id
        self._token = token
        self._scope = scope
        self._report = report
        self._ending: tuple[pb.JobStatus, str] | None = None
        """The status a cancelled job reports before it leaves its room (the first canceller's);
        ``None``: nothing to report (the server ended the job itself, or nobody ended it)."""
        self.room_ended = False
        """Whether the job's room ended under it (the server closed the session)."""

    @property
    def id(self) -> str:
        """The job's id (``AJ_...``)."""
        return self.job.id

    @property
    def participant(self) -> models.ParticipantInfo | None:
        """The participant a publisher or participant job is for (``None`` for a room job).

        As the server saw it when it dispatched the job: for ``JT_PUBLISHER``, when the
        participant first published a track (or when the dispatch was created, if it had
        published before); for ``JT_PARTICIPANT``, when it joined (or when the dispatch was
        created).  The server does not end the job when that participant leaves: watch for
        :class:`~lkanyio.ParticipantDisconnected` in the room if the job should end then.
        """
        return self.job.participant if self.job.HasField("participant") else None

    def __repr__(self) -> str:
        return f"<JobContext {self.job.id} room={self.job.room.name!r}>"

    @asynccontextmanager
    async def connect(self, *, options: RoomOptions | None = None) -> AsyncIterator[Room]:
        """Join the job's room as the job's participant (the token the server signed for it).

        If the server ends the session (the room is deleted, the participant removed), the
        block ends with :class:`~lkanyio.ConnectionLostError` as ``lkanyio.connect``'s does, and
        the whole job is cancelled: the room ending ends the job.

        Leaving the room ends the job at the server (livekit-server ends a job whose participant
        left, as failed: "agent worker left the room"), so the job's status is sent as the block
        ends, before the room is left: failed with the error's text if the block raised, failed
        with ``cancelled: the worker's drain ran out`` if the drain cancelled the job, else
        success.

        Args:
            options: how to join (as for :func:`lkanyio.connect`).

        Yields:
            The joined room.
        """
        try:
            async with connect(self.url, self._token, options=options) as room:
                # livekit-server ends a job when its participant leaves the room (as failed:
                # "agent worker left the room") and ignores later statuses: the job's own
                # status must reach it before the room is left.  Shielded (and bounded where it
                # waits): a cancelled job reports too.
                try:
                    yield room
                except Exception as exc:
                    with anyio.CancelScope(shield=True):
                        await self._report_status(pb.JobStatus.JS_FAILED, describe(exc))
                    raise
                except BaseException:
                    # Cancelled: by the worker (it chose the status), or by a scope of the
                    # entrypoint's own (nothing to report: the job goes on).
                    if self._ending is not None:
                        with anyio.CancelScope(shield=True):
                            await self._report_status(*self._ending)
                    raise
                else:
                    await self._report_status(pb.JobStatus.JS_SUCCESS, "")
        except ConnectionLostError:
            self.room_ended = True
            self._scope.cancel()
            raise

    async def _report_status(self, status: pb.JobStatus, error: str) -> None:
        if self._report is not None:
            await self._report(status, error)

    def cancel(self) -> None:
        """End this job from inside or outside it: its entrypoint is cancelled.

        The job is reported succeeded (before it leaves its room, if it is in one).
        """
        self._end(pb.JobStatus.JS_SUCCESS, "")

    def _end(self, status: pb.JobStatus | None, error: str = "") -> None:
        """Cancel the job; it reports ``status`` before it leaves its room (``None``: none).

        The first caller's status holds: a job the drain cancelled stays failed when the
        server's termination follows.
        """
        if self._ending is None and status is not None:
            self._ending = (status, error)
        self._scope.cancel()
