"""Sessions HTTP routes (availability, slots, sessions, calendars) behind the gateway:
thin, they parse, call the domain, and shape the answer."""

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import AwareDatetime

from services.sessions import availability, booking, calendar, search, store
from services.sessions.booking import Limits, SessionFilter
from services.sessions.models import Availability
from services.sessions.people import check_self, group_party, match_party, org_of
from services.sessions.schemas import (
    AvailabilityIn,
    AvailabilityOut,
    CancelIn,
    ExceptionOut,
    FeedOut,
    OccurrenceIn,
    OccurrenceOut,
    ParticipantOut,
    SessionIn,
    SessionOut,
    SessionPatch,
    SessionStatus,
    SlotOut,
    SlotsOut,
    WeeklyWindowOut,
)
from services.sessions.settings import SessionsSettings
from services.sessions.store import SessionView
from shared.identity import OrgCaller, require_scope
from shared.pagination import (
    Cursor,
    Limit,
    Page,
    decode_created_after,
    encode_created_after,
    page_of,
)
from shared.preconditions import etag
from shared.service import SessionDep

router = APIRouter(tags=["sessions"], dependencies=[require_scope("sessions")])

ICS = "text/calendar; charset=utf-8"

From = Annotated[AwareDatetime, Query(alias="from", description="RFC 3339 instant")]
To = Annotated[
    AwareDatetime, Query(description="RFC 3339 instant (at most the maximum range after from)")
]
Duration = Annotated[int, Query(ge=5, le=720, description="Slot length in minutes")]
Step = Annotated[int, Query(ge=5, le=240, description="Minutes between slot starts, on a UTC grid")]


def _settings(request: Request) -> SessionsSettings:
    settings: SessionsSettings = request.app.state.settings
    return settings


def _limits(request: Request) -> Limits:
    s = _settings(request)
    return Limits(s.series_horizon_days, s.series_max_occurrences, s.reminder_leads)


def _availability_out(row: Availability, response: Response) -> AvailabilityOut:
    response.headers["ETag"] = etag(row.version)
    return AvailabilityOut(
        employee_external_id=row.external_id,
        time_zone=row.time_zone,
        weekly=[WeeklyWindowOut.model_validate(w) for w in row.weekly],
        exceptions=[ExceptionOut.model_validate(e) for e in row.exceptions],
        version=row.version,
    )


def session_out(view: SessionView, response: Response | None = None) -> SessionOut:
    """A session as the API shows it."""
    s = view.session
    if response is not None:
        response.headers["ETag"] = etag(s.version)
    return SessionOut(
        id=s.id, match_id=s.match_id, group_id=s.group_id, program_id=s.program_id,
        starts_at=s.starts_at, duration_minutes=s.duration_minutes, time_zone=s.time_zone,
        rrule=s.rrule, title=s.title, agenda=s.agenda, location=s.location,
        video_url=s.video_url, status=s.status, reason=s.reason,
        split_from=s.split_from, version=s.version, created_at=s.created_at,
        participants=[
            ParticipantOut(
                employee_external_id=p.external_id, person_id=p.person_id, role=p.role,
                active=p.active,
            )
            for p in view.participants
        ],
        occurrences=[
            OccurrenceOut(
                occurrence_starts_at=o.original_starts_at, starts_at=o.starts_at,
                ends_at=o.ends_at, status=o.status, reason=o.reason,
            )
            for o in view.occurrences
        ],
    )  # fmt: skip


@router.put("/v1/employees/{external_id}/availability", response_model=AvailabilityOut)
async def put_availability(
    external_id: str,
    body: AvailabilityIn,
    caller: OrgCaller,
    session: SessionDep,
    response: Response,
) -> AvailabilityOut:
    """Replace a person's weekly windows (in their IANA zone) and date exceptions.
    422 names each bad field: end before start, weekday outside 0-6, unknown zone, and
    overlapping windows (refused, not merged: the later window is named)."""
    check_self(caller, external_id)
    row = await availability.put_availability(session, org_of(caller), external_id, body)
    return _availability_out(row, response)


@router.get("/v1/employees/{external_id}/availability", response_model=AvailabilityOut)
async def get_availability(
    external_id: str, caller: OrgCaller, session: SessionDep, response: Response
) -> AvailabilityOut:
    """A person's availability (404 if they have not set one)."""
    check_self(caller, external_id)
    row = await availability.get_availability(session, org_of(caller), external_id)
    return _availability_out(row, response)


async def _slots(
    request: Request,
    session: SessionDep,
    caller: OrgCaller,
    party_of: str,
    party_id: uuid.UUID,
    start: AwareDatetime,
    end: AwareDatetime,
    duration: int,
    step: int,
) -> SlotsOut:
    search.check_range(start, end, _settings(request).slot_max_range_days)
    party = (
        await match_party(session, caller, party_id)
        if party_of == "match"
        else await group_party(session, caller, party_id)
    )
    found = await search.find_slots(
        session, org_of(caller), party, start, end, timedelta(minutes=duration),
        timedelta(minutes=step),
    )  # fmt: skip
    return SlotsOut(items=[SlotOut(starts_at=lo, ends_at=hi) for lo, hi in found])


@router.get("/v1/matches/{match_id}/slots", response_model=SlotsOut)
async def match_slots(
    match_id: uuid.UUID,
    request: Request,
    caller: OrgCaller,
    session: SessionDep,
    start: From,
    to: To,
    duration: Duration = 60,
    step: Step = 30,
) -> SlotsOut:
    """Free slots common to mentor and mentee in `[from, to)`, in UTC, sorted, exactly
    `duration` minutes long: inside each one's availability in their own zone, outside
    every session either booked in any match. `to` may be at most
    `MENTORBUS_SLOT_MAX_RANGE_DAYS` (62) days after `from`, else 422."""
    return await _slots(request, session, caller, "match", match_id, start, to, duration, step)


@router.get("/v1/groups/{group_id}/slots", response_model=SlotsOut)
async def group_slots(
    group_id: uuid.UUID,
    request: Request,
    caller: OrgCaller,
    session: SessionDep,
    start: From,
    to: To,
    duration: Duration = 60,
    step: Step = 30,
) -> SlotsOut:
    """Free slots common to a circle's mentor and every active member (as for a match)."""
    return await _slots(request, session, caller, "group", group_id, start, to, duration, step)


@router.post("/v1/sessions", status_code=201, response_model=SessionOut)
async def book_session(
    body: SessionIn, request: Request, caller: OrgCaller, session: SessionDep, response: Response
) -> SessionOut:
    """Book a one-off session or a series (`rrule`) for an active match or a circle. 409
    if the match is not active, or if any participant is booked then: the answer's
    `conflicts` names every conflicting occurrence. Concurrent bookings of one time:
    exactly one succeeds (PostgreSQL decides)."""
    view = await booking.book(session, caller, body, _limits(request))
    response.headers["Location"] = f"/v1/sessions/{view.session.id}"
    return session_out(view, response)


@router.get("/v1/sessions", response_model=Page[SessionOut])
async def list_sessions(
    caller: OrgCaller,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    match_id: uuid.UUID | None = None,
    group_id: uuid.UUID | None = None,
    employee_external_id: str | None = None,
    status: SessionStatus | None = None,
) -> Page[SessionOut]:
    """Sessions oldest first, narrowed by match, circle, participant or status (a member
    sees only sessions they take part in)."""
    where = SessionFilter(match_id, group_id, employee_external_id, status)
    views = await booking.list_sessions(
        session, caller, where, decode_created_after(cursor), limit + 1
    )
    return page_of(views, limit, session_out, lambda v: encode_created_after(v.session))


@router.get("/v1/sessions/{session_id}", response_model=SessionOut)
async def get_session(
    session_id: uuid.UUID, caller: OrgCaller, session: SessionDep, response: Response
) -> SessionOut:
    """A session with its participants and occurrences."""
    return session_out(await store.get_visible(session, caller, session_id), response)


@router.patch("/v1/sessions/{session_id}", response_model=SessionOut)
async def reschedule_session(
    session_id: uuid.UUID,
    body: SessionPatch,
    request: Request,
    caller: OrgCaller,
    session: SessionDep,
    response: Response,
) -> SessionOut:
    """Move or edit a session. A series: one occurrence (`occurrence_starts_at`, scope
    `occurrence`) or this and the following ones (scope `following`: the series is split
    there and the answer is the new series). 409 naming conflicts as for booking."""
    view = await booking.reschedule(session, caller, session_id, body, _limits(request))
    return session_out(view, response)


@router.post("/v1/sessions/{session_id}/cancel", response_model=SessionOut)
async def cancel_session(
    session_id: uuid.UUID,
    caller: OrgCaller,
    session: SessionDep,
    response: Response,
    body: Annotated[CancelIn | None, Body()] = None,
) -> SessionOut:
    """Cancel with a reason: the whole session, one occurrence, or this and the following
    ones (`occurrence_starts_at`, `scope`). Completed occurrences stay."""
    view = await booking.cancel(session, caller, session_id, body or CancelIn())
    return session_out(view, response)


@router.post("/v1/sessions/{session_id}/complete", response_model=SessionOut)
async def complete_session(
    session_id: uuid.UUID,
    caller: OrgCaller,
    session: SessionDep,
    response: Response,
    body: Annotated[OccurrenceIn | None, Body()] = None,
) -> SessionOut:
    """The session (or, for a series, the occurrence `occurrence_starts_at`) took place."""
    view = await booking.mark(session, caller, session_id, body or OccurrenceIn(), "completed")
    return session_out(view, response)


@router.post("/v1/sessions/{session_id}/no-show", response_model=SessionOut)
async def no_show_session(
    session_id: uuid.UUID,
    caller: OrgCaller,
    session: SessionDep,
    response: Response,
    body: Annotated[OccurrenceIn | None, Body()] = None,
) -> SessionOut:
    """The session (or one occurrence of a series) was missed."""
    view = await booking.mark(session, caller, session_id, body or OccurrenceIn(), "no_show")
    return session_out(view, response)


@router.get(
    "/v1/employees/{external_id}/calendar.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}},
)
async def person_calendar(external_id: str, caller: OrgCaller, session: SessionDep) -> Response:
    """The person's sessions as iCalendar: stable UIDs, SEQUENCE raised on every change,
    series as RRULE with cancelled occurrences as EXDATE and moved ones as overrides."""
    check_self(caller, external_id)
    ics = await calendar.person_calendar(session, org_of(caller), external_id)
    return Response(content=ics, media_type=ICS)


@router.post("/v1/employees/{external_id}/calendar-feed", status_code=201, response_model=FeedOut)
async def create_feed(
    external_id: str, request: Request, caller: OrgCaller, session: SessionDep
) -> FeedOut:
    """A secret feed URL of the person's calendar for calendar apps (no header needed).
    A new link replaces the previous one."""
    check_self(caller, external_id)
    url = await calendar.create_feed(
        session, org_of(caller), external_id, _settings(request).feed_base_url
    )
    return FeedOut(url=url)


@router.delete("/v1/employees/{external_id}/calendar-feed", status_code=204)
async def revoke_feed(external_id: str, caller: OrgCaller, session: SessionDep) -> Response:
    """Revoke the person's feed link: it answers 404 from now on."""
    check_self(caller, external_id)
    await calendar.revoke_feeds(session, org_of(caller), external_id)
    return Response(status_code=204)


@router.get(
    "/v1/calendar-feeds/{token}",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}},
)
async def feed(token: str, session: SessionDep) -> Response:
    """The calendar behind a secret feed link (public: the link is the credential)."""
    ics = await calendar.feed_calendar(session, token)
    return Response(content=ics, media_type=ICS, headers={"Cache-Control": "private, max-age=300"})
