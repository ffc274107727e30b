"""What sessions consumes (`person.*`, `match.*`: its projections, and cancellations when
a match closes or a person leaves) and what it publishes (`session.*`, in `store.publish`
and `reminders`, through the outbox in the same transaction as the change)."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.sessions import people, reactions
from shared.consumer import Handler, batched
from shared.events import (
    CloudEvent,
    EventData,
    MatchAcceptedV1,
    MatchCompletedV1,
    MatchCreatedV1,
    MatchDeclinedV1,
    MatchEndedV1,
    PersonDeactivatedV1,
    PersonUpsertedV1,
)
from shared.events.matches import MatchState
from shared.events.people import PersonState


async def on_leavers(session: AsyncSession, events: list[tuple[CloudEvent, PersonState]]) -> None:
    """People left: who can be scheduled, in one statement for the batch; then the future
    sessions of those who take part in any are cancelled (or left, in a circle)."""
    await people.apply_people(session, events)
    leavers: dict[uuid.UUID, set[str]] = {}
    for event, person in events:
        leavers.setdefault(uuid.UUID(event.orgid), set()).add(person.external_id)
    for org_id, external_ids in leavers.items():
        await reactions.people_offboarded(session, org_id, external_ids)


async def on_match(session: AsyncSession, event: CloudEvent, match: MatchState) -> None:
    """A match changed: keep its people and status; ended or declined cancels its future
    sessions (only if this event is the newest we have seen of it)."""
    org_id = uuid.UUID(event.orgid)
    changed = await people.apply_match(session, org_id, match)
    if changed and match.status in reactions.ENDED:
        await reactions.match_closed(
            session, org_id, match.match_id, match.group_id, match.mentee_external_id, match.status
        )


HANDLERS: dict[type[EventData], Handler] = {
    PersonUpsertedV1: batched(people.apply_people, idempotent=True),
    # Not idempotent: a cancellation publishes events, so the inbox keeps redeliveries out.
    PersonDeactivatedV1: batched(on_leavers),
    MatchCreatedV1: on_match,
    MatchAcceptedV1: on_match,
    MatchDeclinedV1: on_match,
    MatchEndedV1: on_match,
    MatchCompletedV1: on_match,
}
