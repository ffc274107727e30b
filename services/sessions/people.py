"""Who takes part: people and matches as this service's projections know them, and the
member rule (an end user sees only their own calendar and the matches they are in)."""

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.sessions.models import MatchProjection, PersonProjection
from shared.consistency import await_projected
from shared.db import upsert_newer, upsert_newer_many, utcnow
from shared.errors import Conflict, NotFound
from shared.events import CloudEvent
from shared.events.matches import MatchState
from shared.events.people import PersonState
from shared.identity import Caller


@dataclass(frozen=True)
class Participant:
    """Someone a session includes."""

    external_id: str
    person_id: uuid.UUID | None
    role: str  # mentor | mentee | member


@dataclass(frozen=True)
class Party:
    """The people a match or a circle brings to a session."""

    match_id: uuid.UUID | None
    group_id: uuid.UUID | None
    program_id: uuid.UUID
    participants: tuple[Participant, ...]
    active: bool

    @property
    def external_ids(self) -> list[str]:
        """Every participant's external id."""
        return [p.external_id for p in self.participants]

    @property
    def mentor(self) -> str | None:
        """The mentor's external id."""
        return next((p.external_id for p in self.participants if p.role == "mentor"), None)


_PERSON_FIELDS = (
    "external_id",
    "email",
    "display_name",
    "time_zone",
    "employment_status",
    "version",
)


async def apply_people(session: AsyncSession, events: list[tuple[CloudEvent, PersonState]]) -> None:
    """A batch of person events in one version-guarded statement (older ones ignored)."""
    now = utcnow()
    rows = [
        {"id": p.person_id, "org_id": e.orgid, **{f: getattr(p, f) for f in _PERSON_FIELDS}}
        | {"updated_at": now}
        for e, p in events
    ]
    await upsert_newer_many(session, PersonProjection, rows)


def org_of(caller: Caller) -> uuid.UUID:
    """The caller's organization (routes only let organization callers through)."""
    assert caller.org_id is not None
    return caller.org_id


def check_self(caller: Caller, external_id: str) -> None:
    """A member may only act on their own availability and calendar (others: 404)."""
    if caller.is_member and caller.subject != external_id:
        raise NotFound(f"employee {external_id} not found")


def check_party(caller: Caller, participants: list[str], what: str) -> None:
    """A member may only see what they take part in (others: 404)."""
    if caller.is_member and caller.subject not in participants:
        raise NotFound(f"{what} not found")


async def apply_match(session: AsyncSession, org_id: uuid.UUID, match: MatchState) -> bool:
    """Keep who is in a match and whether it is live; older versions are ignored."""
    return await upsert_newer(
        session,
        MatchProjection,
        {
            "id": match.match_id,
            "org_id": org_id,
            "program_id": match.program_id,
            "group_id": match.group_id,
            "mentor_person_id": match.mentor_person_id,
            "mentee_person_id": match.mentee_person_id,
            "mentor_external_id": match.mentor_external_id,
            "mentee_external_id": match.mentee_external_id,
            "status": match.status,
            "version": match.version,
            "updated_at": utcnow(),
        },
    )


async def get_person(
    session: AsyncSession, org_id: uuid.UUID, external_id: str
) -> PersonProjection:
    """A person of the organization (waiting briefly for a just-synced one), else 404."""

    async def lookup() -> PersonProjection | None:
        return await session.scalar(
            select(PersonProjection).where(
                PersonProjection.org_id == org_id, PersonProjection.external_id == external_id
            )
        )

    person = await await_projected(lookup)
    if person is None:
        raise NotFound(f"employee {external_id} not found")
    return person


def _match_party(match: MatchProjection) -> Party:
    participants = [
        Participant(match.mentor_external_id, match.mentor_person_id, "mentor")
        if match.mentor_external_id
        else None,
        Participant(match.mentee_external_id, match.mentee_person_id, "mentee")
        if match.mentee_external_id
        else None,
    ]
    return Party(
        match_id=match.id,
        group_id=match.group_id,
        program_id=match.program_id,
        participants=tuple(p for p in participants if p is not None),
        active=match.status == "active",
    )


async def match_party(
    session: AsyncSession, caller: Caller, match_id: uuid.UUID, *, want_active: bool = False
) -> Party:
    """A match's two people (waiting briefly for a just-made match), else 404. With
    `want_active`, also wait briefly for a just-accepted match to be seen as active."""
    org_id = org_of(caller)

    async def lookup() -> MatchProjection | None:
        return await session.scalar(
            select(MatchProjection)
            .where(MatchProjection.id == match_id, MatchProjection.org_id == org_id)
            .execution_options(populate_existing=True)
        )

    async def lookup_active() -> MatchProjection | None:
        found = await lookup()
        return found if found is not None and found.status == "active" else None

    match = await await_projected(lookup_active) if want_active else None
    match = match or await await_projected(lookup)
    if match is None:
        raise NotFound(f"match {match_id} not found")
    party = _match_party(match)
    check_party(caller, party.external_ids, f"match {match_id}")
    return party


async def group_party(
    session: AsyncSession, caller: Caller, group_id: uuid.UUID, *, want_active: bool = False
) -> Party:
    """A circle: its mentor and every active member (waiting briefly for it), else 404.
    With `want_active`, also wait briefly for an active member to be seen."""
    org_id = org_of(caller)

    async def lookup() -> list[MatchProjection] | None:
        rows = (
            await session.scalars(
                select(MatchProjection)
                .where(MatchProjection.org_id == org_id, MatchProjection.group_id == group_id)
                .order_by(MatchProjection.mentee_external_id)
                .execution_options(populate_existing=True)
            )
        ).all()
        return list(rows) or None

    async def lookup_active() -> list[MatchProjection] | None:
        found = await lookup()
        return found if found and any(m.status == "active" for m in found) else None

    matches = await await_projected(lookup_active) if want_active else None
    matches = matches or await await_projected(lookup)
    if not matches:
        raise NotFound(f"group {group_id} not found")
    active = [m for m in matches if m.status == "active"]
    seen: dict[str, Participant] = {}
    for m in active or matches[:1]:
        if m.mentor_external_id:
            seen.setdefault(
                m.mentor_external_id,
                Participant(m.mentor_external_id, m.mentor_person_id, "mentor"),
            )
    for m in active:
        if m.mentee_external_id:
            seen.setdefault(
                m.mentee_external_id,
                Participant(m.mentee_external_id, m.mentee_person_id, "member"),
            )
    party = Party(
        match_id=None,
        group_id=group_id,
        program_id=matches[0].program_id,
        participants=tuple(seen.values()),
        active=bool(active),
    )
    check_party(caller, party.external_ids, f"group {group_id}")
    return party


def require_active(party: Party) -> None:
    """Sessions are booked only for a live match or a circle with active members."""
    if not party.active:
        what = f"match {party.match_id}" if party.match_id else f"group {party.group_id}"
        raise Conflict(f"{what} is not active")
