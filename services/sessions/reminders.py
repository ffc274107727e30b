"""Reminders: `session.reminder_due` at each configured lead time before an occurrence.

Durable rows in PostgreSQL (planned when an occurrence is booked or moved), claimed by a
background loop with `SELECT ... FOR UPDATE SKIP LOCKED`; the event goes to the outbox and
the row is marked sent in the same transaction. So each reminder goes out once, across
restarts (nothing lives in memory) and with several replicas (a claimed row is skipped
by the others, a committed one is no longer due).
"""

import asyncio
import contextlib
import logging
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.sessions import store
from services.sessions.models import Occurrence, Reminder
from services.sessions.store import SessionView
from shared.db import utcnow
from shared.events.sessions import SessionReminderDueV1

log = logging.getLogger(__name__)


async def send_due(session: AsyncSession, batch_size: int) -> int:
    """Publish the reminders due now that no other replica holds; returns how many."""
    now = utcnow()
    due = (
        await session.scalars(
            select(Reminder)
            .where(Reminder.sent_at.is_(None), Reminder.due_at <= now)
            .order_by(Reminder.due_at, Reminder.id)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
    ).all()
    views: dict[uuid.UUID, SessionView | None] = {}
    for reminder in due:
        reminder.sent_at = now
        occurrence = await session.get(Occurrence, reminder.occurrence_id)
        if occurrence is None or occurrence.status != "scheduled":
            continue
        if occurrence.session_id not in views:
            views[occurrence.session_id] = await store.load(
                session, reminder.org_id, occurrence.session_id
            )
        view = views[occurrence.session_id]
        if view is not None:
            store.publish(
                session, SessionReminderDueV1, view, occurrence=occurrence,
                lead_minutes=reminder.lead_minutes,
            )  # fmt: skip
    return len(due)


class ReminderWorker:
    """Runs `send_due` in the background every `poll_seconds` (at once again while full
    batches keep coming)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        poll_seconds: float,
        batch_size: int,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop on the running event loop."""
        self._task = asyncio.create_task(self._run(), name="session-reminders")

    async def stop(self) -> None:
        """Stop the loop; unsent reminders stay for the next run."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with self._sessionmaker.begin() as session:
                    sent = await send_due(session, self._batch_size)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sending reminders failed; retrying")
                sent = 0
            if sent < self._batch_size:
                await asyncio.sleep(self._poll_seconds)
