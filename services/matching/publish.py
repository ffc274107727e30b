"""What matching publishes: `match.*` events, staged in the outbox in the same transaction
as the change (one at a time, or a whole applied run's with one statement)."""

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from asyncpg.pgproto.pgproto import UUID as AsyncpgUUID
from pydantic_core import to_json
from sqlalchemy.ext.asyncio import AsyncSession

from services.matching.models import Match
from services.matching.pool import driver
from shared.db import utcnow
from shared.events import MatchCreatedV1, make_event
from shared.events.envelope import SPEC_VERSION
from shared.events.matches import MatchState
from shared.outbox import add_event

SOURCE = "mentorbus/matching"


def transition(
    session: AsyncSession,
    match: Match,
    status: str,
    event: type[MatchState],
    reason: str | None = None,
) -> None:
    """Move a match to `status` (with why, if it ends) and stage the event saying so."""
    match.status = status
    match.version += 1
    match.updated_at = utcnow()
    if reason is not None:
        match.end_reason = reason
    publish_match(session, match, event)


def match_state(match: Match | Mapping[str, Any], event: type[MatchState]) -> MatchState:
    """The event of a match's state (a stored match, or the values of one being inserted)."""
    values = match if isinstance(match, Mapping) else {f: getattr(match, f, None) for f in _FIELDS}
    return event(match_id=values["id"], **{f: values.get(f) for f in _FIELDS if f != "id"})


_FIELDS = (
    "id", "program_id", "version", "mentee_enrollment_id", "mentor_enrollment_id",
    "mentee_person_id", "mentor_person_id", "mentee_external_id", "mentor_external_id",
    "status", "score", "end_reason", "group_id",
)  # fmt: skip


def publish_match(session: AsyncSession, match: Match, event: type[MatchState]) -> None:
    """Stage the event of a match's new state in the current transaction."""
    add_event(session, match_state(match, event), source=SOURCE, orgid=match.org_id)


# An applied run stages tens of thousands of `match.created` at once. Their envelopes are
# built as plain JSON values and inserted with one statement: a pydantic model per event
# (data, envelope, dump) costs more than the whole database write. That it is exactly what
# `make_event(match_state(...))` builds is checked at import and by the tests.
_INSERT_OUTBOX = """
    INSERT INTO outbox_message (event_id, topic, key, event_type, payload, created_at)
    SELECT r.event_id, r.topic, r.key, r.event_type, r.payload, r.created_at
    FROM jsonb_to_recordset($1::text::jsonb) AS r(
        event_id uuid, topic text, key text, event_type text, payload jsonb,
        created_at timestamptz
    )
"""


def created_envelope(org_id: str, match: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The `match.created` envelope of a new match's columns, as values `to_json` encodes
    exactly as `make_event(match_state(match, MatchCreatedV1)).model_dump(mode="json")`."""
    match_id = str(match["id"])
    data = {f: _plain(match.get(f)) for f in _FIELDS if f != "id"}
    return {
        "specversion": SPEC_VERSION,
        "id": str(uuid.uuid4()),
        "source": SOURCE,
        "type": MatchCreatedV1.event_type,
        "time": now,
        "subject": match_id,
        "datacontenttype": "application/json",
        "orgid": org_id,
        "data": {"match_id": match_id, **data},
    }


def _plain(value: Any) -> Any:
    # UUIDs as text: pydantic-core encodes asyncpg's own UUID type (a subclass) ~10x slower.
    return str(value) if isinstance(value, uuid.UUID) else value


def _envelope_matches_make_event() -> bool:
    # Ids as the pool holds them (asyncpg's UUID type) and as the use case makes them.
    match = {
        "id": uuid.uuid4(), "org_id": uuid.uuid4(), "program_id": uuid.uuid4(), "version": 1,
        "mentee_enrollment_id": AsyncpgUUID(str(uuid.uuid4())),
        "mentor_enrollment_id": uuid.uuid4(),
        "mentee_person_id": uuid.uuid4(), "mentor_person_id": None,
        "mentee_external_id": "e1", "mentor_external_id": None, "status": "proposed",
        "score": 0.123456, "breakdown": [], "reasons": [], "run_id": uuid.uuid4(),
    }  # fmt: skip
    now = utcnow()
    plain = json.loads(to_json(created_envelope("org", match, now)))
    model = make_event(match_state(match, MatchCreatedV1), source=SOURCE, orgid="org")
    reference = model.model_copy(update={"id": uuid.UUID(plain["id"]), "time": now})
    return bool(plain == reference.model_dump(mode="json"))


assert _envelope_matches_make_event(), "match.created envelope drifted from shared/events"


def created_outbox(org_id: uuid.UUID, matches: Sequence[Mapping[str, Any]]) -> str:
    """The outbox rows of `match.created` for new matches, in their order, as the JSON
    document `stage_outbox` inserts (pure: may be built off the event loop)."""
    now, org = utcnow(), str(org_id)
    rows = []
    for match in matches:
        envelope = created_envelope(org, match, now)
        rows.append(
            {
                "event_id": envelope["id"],
                "topic": MatchCreatedV1.topic,
                "key": envelope["subject"],
                "event_type": MatchCreatedV1.event_type,
                "payload": envelope,
                "created_at": now,
            }
        )
    return to_json(rows).decode()


async def stage_outbox(session: AsyncSession, document: str) -> None:
    """Stage outbox rows (see `created_outbox`) with one statement, on the session's
    connection: they commit or roll back with the caller's transaction."""
    await (await driver(session)).execute(_INSERT_OUTBOX, document)
