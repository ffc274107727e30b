"""Feedback HTTP routes behind the gateway: feedback requests and answers, check-ins,
goals, at-risk matches and program analytics. Thin: they parse, call the domain, shape the
answer."""

import uuid
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from services.feedback import analytics, answers, checkins, goals, risk
from services.feedback.feedback_requests import RequestFilter, list_requests
from services.feedback.models import FeedbackRequest, Goal
from services.feedback.projections import existing_program
from services.feedback.schemas import (
    AtRiskOut,
    CheckinIn,
    CheckinOut,
    FeedbackIn,
    FeedbackOut,
    FeedbackPatch,
    FeedbackRequestOut,
    GoalIn,
    GoalOut,
    GoalPatch,
    GoalStatus,
    GoalUpdateOut,
    ReasonOut,
    RequestKind,
    RequestStatus,
)
from services.feedback.settings import FeedbackSettings
from shared.db import utcnow
from shared.errors import FieldError, Forbidden, InvalidInput
from shared.identity import OrgAdminId, OrgCaller
from shared.pagination import (
    Cursor,
    Limit,
    Page,
    decode_created_after,
    decode_cursor,
    encode_created_after,
    encode_cursor,
    page_of,
)
from shared.preconditions import IfMatch, etag, parse_if_match
from shared.service import SessionDep

router = APIRouter(tags=["feedback"])


def _settings(request: Request) -> FeedbackSettings:
    settings: FeedbackSettings = request.app.state.settings
    return settings


Settings = Annotated[FeedbackSettings, Depends(_settings)]


def _request_out(request: FeedbackRequest) -> FeedbackRequestOut:
    return FeedbackRequestOut(
        id=request.id,
        kind=request.kind,
        session_id=request.session_id,
        occurrence_starts_at=request.occurrence_starts_at,
        match_id=request.match_id,
        group_id=request.group_id,
        program_id=request.program_id,
        employee_external_id=request.employee_external_id,
        role=request.role,
        status=request.status_at(utcnow()),
        created_at=request.created_at,
        expires_at=request.expires_at,
        answered_at=request.answered_at,
    )


@router.get("/v1/feedback-requests", response_model=Page[FeedbackRequestOut])
async def get_feedback_requests(
    caller: OrgCaller,
    session: SessionDep,
    employee: str | None = None,
    status: RequestStatus | None = None,
    kind: RequestKind | None = None,
    match_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[FeedbackRequestOut]:
    """Feedback requests, oldest first, by employee (external id), status (`pending`,
    `answered`, `expired`), kind or match. A member sees only their own."""
    assert caller.org_id is not None
    if caller.is_member:
        if employee is not None and employee != caller.subject:
            raise Forbidden("a member sees only their own feedback requests")
        employee = caller.subject
    found = await list_requests(
        session,
        caller.org_id,
        RequestFilter(employee, status, kind, match_id),
        decode_created_after(cursor),
        limit + 1,
    )
    return page_of(found, limit, _request_out, encode_created_after)


@router.get("/v1/feedback-requests/{request_id}", response_model=FeedbackRequestOut)
async def get_feedback_request(
    request_id: uuid.UUID, caller: OrgCaller, session: SessionDep
) -> FeedbackRequestOut:
    """One feedback request (a member: only their own)."""
    return _request_out(await answers.visible_request(session, caller, request_id))


@router.post("/v1/feedback", status_code=201, response_model=FeedbackOut)
async def post_feedback(
    body: FeedbackIn, caller: OrgCaller, session: SessionDep, response: Response
) -> FeedbackOut:
    """Answer a feedback request: rating 1-5, comment (stored as given), tags, and `nps`
    0-10 on `match_end` requests. One answer per request: a second is a 409, as is an
    answer to an expired request."""
    feedback = await answers.submit(
        session, caller, body.request_id, body.rating, body.comment, body.tags, body.nps
    )
    response.headers["ETag"] = etag(feedback.version)
    return FeedbackOut.model_validate(feedback)


@router.get("/v1/feedback/{feedback_id}", response_model=FeedbackOut)
async def get_feedback(
    feedback_id: uuid.UUID, caller: OrgCaller, session: SessionDep, response: Response
) -> FeedbackOut:
    """One answer (a member: only their own)."""
    feedback, _ = await answers.visible_feedback(session, caller, feedback_id)
    response.headers["ETag"] = etag(feedback.version)
    return FeedbackOut.model_validate(feedback)


@router.patch("/v1/feedback/{feedback_id}", response_model=FeedbackOut)
async def patch_feedback(
    feedback_id: uuid.UUID,
    body: FeedbackPatch,
    caller: OrgCaller,
    session: SessionDep,
    settings: Settings,
    response: Response,
) -> FeedbackOut:
    """Edit an answer within the edit window (`MENTORBUS_FEEDBACK_EDIT_WINDOW_HOURS`,
    default 24); 409 after it."""
    changes = body.model_dump(exclude_unset=True)
    for required in ("rating", "tags"):
        if required in changes and changes[required] is None:
            raise InvalidInput([FieldError(required, "may not be null")])
    feedback = await answers.edit(
        session,
        caller,
        feedback_id,
        changes,
        timedelta(hours=settings.feedback_edit_window_hours),
    )
    response.headers["ETag"] = etag(feedback.version)
    return FeedbackOut.model_validate(feedback)


@router.post("/v1/matches/{match_id}/check-ins", status_code=201, response_model=CheckinOut)
async def post_checkin(
    match_id: uuid.UUID, body: CheckinIn, caller: OrgCaller, session: SessionDep
) -> CheckinOut:
    """A participant's 1-5 pulse on an active match (409 if it is not active)."""
    checkin = await checkins.record(
        session, caller, match_id, body.employee_external_id, body.rating, body.comment
    )
    return CheckinOut.model_validate(checkin)


@router.get("/v1/matches/{match_id}/check-ins", response_model=Page[CheckinOut])
async def get_checkins(
    match_id: uuid.UUID,
    caller: OrgCaller,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[CheckinOut]:
    """A match's check-ins, oldest first."""
    found = await checkins.list_checkins(
        session, caller, match_id, decode_created_after(cursor), limit + 1
    )
    return page_of(found, limit, CheckinOut.model_validate, encode_created_after)


async def _goal_out(
    session: SessionDep, goal: Goal, response: Response | None, with_history: bool
) -> GoalOut:
    if response is not None:
        response.headers["ETag"] = etag(goal.version)
    out = GoalOut.model_validate(goal)
    if with_history:
        out.history = [
            GoalUpdateOut.model_validate(u) for u in await goals.history(session, goal.id)
        ]
    return out


@router.post("/v1/goals", status_code=201, response_model=GoalOut)
async def post_goal(
    body: GoalIn, caller: OrgCaller, session: SessionDep, response: Response
) -> GoalOut:
    """Set a SMART goal for a match's mentee (title, description, measure, target date,
    milestones, status, progress 0-100)."""
    goal = await goals.create_goal(session, caller, body.model_dump(mode="json") | {
        "match_id": body.match_id, "target_date": body.target_date,
    })  # fmt: skip
    return await _goal_out(session, goal, response, with_history=True)


@router.get("/v1/goals", response_model=Page[GoalOut])
async def get_goals(
    caller: OrgCaller,
    session: SessionDep,
    match_id: uuid.UUID | None = None,
    program_id: uuid.UUID | None = None,
    status: GoalStatus | None = None,
    mentee: str | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[GoalOut]:
    """Goals, oldest first, by match, program, status or mentee (a member: of their
    matches)."""
    found = await goals.list_goals(
        session,
        caller,
        goals.GoalFilter(match_id, program_id, status, mentee),
        decode_created_after(cursor),
        limit + 1,
    )
    return page_of(found, limit, GoalOut.model_validate, encode_created_after)


@router.get("/v1/goals/{goal_id}", response_model=GoalOut)
async def get_goal(
    goal_id: uuid.UUID, caller: OrgCaller, session: SessionDep, response: Response
) -> GoalOut:
    """One goal with the history of every change."""
    goal = await goals.visible_goal(session, caller, goal_id)
    return await _goal_out(session, goal, response, with_history=True)


@router.patch("/v1/goals/{goal_id}", response_model=GoalOut)
async def patch_goal(
    goal_id: uuid.UUID,
    body: GoalPatch,
    caller: OrgCaller,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> GoalOut:
    """Change a goal (only the fields sent); `If-Match: "<version>"` guards against lost
    updates (412). Status `completed` sets progress to 100."""
    changes = body.model_dump(mode="json", exclude_unset=True)
    if "target_date" in changes:
        changes["target_date"] = body.target_date
    if body.milestones is not None:  # whole milestones, defaults included
        changes["milestones"] = [m.model_dump(mode="json") for m in body.milestones]
    for required in ("title", "milestones", "status", "progress"):
        if required in changes and changes[required] is None:
            raise InvalidInput([FieldError(required, "may not be null")])
    goal = await goals.update_goal(session, caller, goal_id, changes, parse_if_match(if_match))
    return await _goal_out(session, goal, response, with_history=True)


@router.get("/v1/programs/{program_id}/at-risk", response_model=Page[AtRiskOut])
async def get_at_risk(
    program_id: uuid.UUID,
    org_id: OrgAdminId,
    session: SessionDep,
    settings: Settings,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[AtRiskOut]:
    """Active matches that need attention, each with every reason (no session in 30 days,
    a low check-in, low feedback, ...). Admin only."""
    await existing_program(session, org_id, program_id)
    after = decode_cursor(cursor)
    flagged = await risk.at_risk(session, org_id, program_id, settings, utcnow())
    if after is not None:
        last = _cursor_id(after.get("match_id"))
        flagged = [r for r in flagged if r.match.id > last]
    return page_of(
        flagged[: limit + 1],
        limit,
        lambda r: AtRiskOut(
            match_id=r.match.id,
            mentee_external_id=r.match.mentee_external_id,
            mentor_external_id=r.match.mentor_external_id,
            reasons=[ReasonOut(code=x.code, detail=x.detail) for x in r.reasons],
        ),
        lambda r: encode_cursor({"match_id": str(r.match.id)}),
    )


def _cursor_id(value: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput([FieldError("cursor", "not a valid cursor")]) from None


def _day(value: str | None, field: str) -> date | None:
    try:
        return date.fromisoformat(value) if value is not None else None
    except ValueError:
        raise InvalidInput([FieldError(field, "expected a date (YYYY-MM-DD)")]) from None


@router.get(
    "/v1/programs/{program_id}/analytics",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
async def get_analytics(
    program_id: uuid.UUID,
    org_id: OrgAdminId,
    session: SessionDep,
    request: Request,
    from_: Annotated[str | None, Query(alias="from", description="first day (UTC)")] = None,
    to: Annotated[str | None, Query(description="last day (UTC), included")] = None,
) -> Response:
    """Participation, engagement, satisfaction (by month, with NPS) and goals of a
    program, each figure with its counts; `Accept: text/csv` gives the same figures as CSV.
    Admin only."""
    first, last = _day(from_, "from"), _day(to, "to")
    if first is not None and last is not None and first > last:
        raise InvalidInput([FieldError("to", "must not be before from")])
    await existing_program(session, org_id, program_id)
    figures = await analytics.program_analytics(session, program_id, first, last)
    if "text/csv" in request.headers.get("accept", ""):
        return Response(analytics.as_csv(figures), media_type="text/csv; charset=utf-8")
    return Response(analytics.json_bytes(figures), media_type="application/json")
