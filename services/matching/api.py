"""Matching HTTP routes (suggestions, matches, runs) behind the gateway: thin, they parse,
call the domain, and shape the answer."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response

from services.matching import domain
from services.matching.models import Match
from services.matching.schemas import (
    ApplyOut,
    CriterionOut,
    EndIn,
    MatchIn,
    MatchOut,
    MatchStatus,
    RunCreatedOut,
    RunIn,
    RunOut,
    RunSummaryOut,
    SkippedOut,
    SuggestionOut,
    SuggestionsOut,
)
from shared.errors import Forbidden, NotFound
from shared.identity import Caller, OrgAdminId, OrgCaller
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

router = APIRouter(tags=["matching"])


def _org(caller: Caller) -> uuid.UUID:
    assert caller.org_id is not None  # OrgCaller guarantees it
    return caller.org_id


async def _visible_match(session: SessionDep, caller: Caller, match_id: uuid.UUID) -> Match:
    """A match the caller may see: a member only one they are in (else a 404)."""
    match = await domain.get_match(session, _org(caller), match_id)
    if caller.is_member and caller.subject not in (
        match.mentee_external_id,
        match.mentor_external_id,
    ):
        raise NotFound(f"match {match_id} not found")
    return match


async def _as_mentor(session: SessionDep, caller: Caller, match_id: uuid.UUID) -> None:
    """Only the mentor answers a proposal: a member who is the mentee gets a 403."""
    match = await _visible_match(session, caller, match_id)
    if caller.is_member and caller.subject != match.mentor_external_id:
        raise Forbidden("only the mentor accepts or declines a proposed match")


def _match_out(match: Match, response: Response | None = None) -> MatchOut:
    if response is not None:
        response.headers["ETag"] = etag(match.version)
    return MatchOut.model_validate(match)


@router.get(
    "/v1/programs/{program_id}/enrollments/{enrollment_id}/suggestions",
    response_model=SuggestionsOut,
)
async def get_suggestions(
    program_id: uuid.UUID,
    enrollment_id: uuid.UUID,
    caller: OrgCaller,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> SuggestionsOut:
    """The best mentors for a mentee, best first, each with its score broken down per
    criterion and reasons in plain words. Mentors the hard rules exclude never appear.
    A member asks only for their own enrollment."""
    org_id = _org(caller)
    if caller.is_member:
        mine = await domain.get_enrollment(session, org_id, program_id, enrollment_id)
        if mine.employee_external_id != caller.subject:
            raise NotFound(f"enrollment {enrollment_id} not found in program {program_id}")
    found = await domain.suggestions(session, org_id, program_id, enrollment_id, limit)
    return SuggestionsOut(
        items=[
            SuggestionOut(
                mentor_enrollment_id=s.mentor.enrollment_id,
                mentor_external_id=s.mentor.external_id,
                score=round(s.explanation.score, 6),
                breakdown=[
                    CriterionOut(
                        criterion=c.criterion,
                        value=round(c.value, 6),
                        weight=c.weight,
                        contribution=round(c.contribution, 6),
                    )
                    for c in s.explanation.breakdown
                ],
                reasons=list(s.explanation.reasons),
            )
            for s in found
        ]
    )


@router.post("/v1/matches", status_code=201, response_model=MatchOut)
async def create_match(
    body: MatchIn, caller: OrgCaller, session: SessionDep, response: Response
) -> MatchOut:
    """A mentee asks a mentor: the match is `proposed` until the mentor accepts or declines.
    409 if a hard rule forbids the pair, the mentor is full, or the mentee has an open match.
    A member asks only as the mentee (their own enrollment)."""
    org_id = _org(caller)
    if caller.is_member:
        mentee = await domain.get_enrollment(
            session, org_id, body.program_id, body.mentee_enrollment_id
        )
        if mentee.employee_external_id != caller.subject:
            raise Forbidden("a member proposes matches only for their own enrollment")
    match = await domain.create_match(
        session, org_id, body.program_id, body.mentee_enrollment_id, body.mentor_enrollment_id
    )
    return _match_out(match, response)


@router.get("/v1/matches", response_model=Page[MatchOut])
async def list_matches(
    caller: OrgCaller,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    program_id: uuid.UUID | None = None,
    status: MatchStatus | None = None,
    mentee_enrollment_id: uuid.UUID | None = None,
    mentor_enrollment_id: uuid.UUID | None = None,
    run_id: uuid.UUID | None = None,
) -> Page[MatchOut]:
    """Matches of the organization, oldest first, optionally narrowed by program, status,
    mentee, mentor or the run that proposed them (a member's: only those they are in)."""
    where = domain.MatchFilter(
        program_id,
        status,
        mentee_enrollment_id,
        mentor_enrollment_id,
        run_id,
        participant=caller.subject if caller.is_member else None,
    )
    matches = await domain.list_matches(
        session, _org(caller), where, decode_created_after(cursor), limit + 1
    )
    return page_of(matches, limit, MatchOut.model_validate, encode_created_after)


@router.get("/v1/matches/{match_id}", response_model=MatchOut)
async def get_match(
    match_id: uuid.UUID, caller: OrgCaller, session: SessionDep, response: Response
) -> MatchOut:
    """One match (a member: only one they are in)."""
    return _match_out(await _visible_match(session, caller, match_id), response)


@router.post("/v1/matches/{match_id}/accept", response_model=MatchOut)
async def accept_match(
    match_id: uuid.UUID, caller: OrgCaller, session: SessionDep, response: Response
) -> MatchOut:
    """The mentor accepts: the match becomes `active` and takes one of their places
    (409 if they have none left)."""
    await _as_mentor(session, caller, match_id)
    return _match_out(await domain.accept_match(session, _org(caller), match_id), response)


@router.post("/v1/matches/{match_id}/decline", response_model=MatchOut)
async def decline_match(
    match_id: uuid.UUID, caller: OrgCaller, session: SessionDep, response: Response
) -> MatchOut:
    """The mentor declines a proposed match."""
    await _as_mentor(session, caller, match_id)
    return _match_out(await domain.decline_match(session, _org(caller), match_id), response)


@router.post("/v1/matches/{match_id}/end", response_model=MatchOut)
async def end_match(
    match_id: uuid.UUID, body: EndIn, caller: OrgCaller, session: SessionDep, response: Response
) -> MatchOut:
    """End a proposed or active match early, saying why (a member: one they are in)."""
    await _visible_match(session, caller, match_id)
    ended = await domain.end_match(session, _org(caller), match_id, body.reason)
    return _match_out(ended, response)


@router.post("/v1/matches/{match_id}/complete", response_model=MatchOut)
async def complete_match(
    match_id: uuid.UUID, caller: OrgCaller, session: SessionDep, response: Response
) -> MatchOut:
    """An active match ran its course (a member: one they are in)."""
    await _visible_match(session, caller, match_id)
    return _match_out(await domain.complete_match(session, _org(caller), match_id), response)


@router.post(
    "/v1/programs/{program_id}/matching-runs", status_code=202, response_model=RunCreatedOut
)
async def create_run(
    program_id: uuid.UUID,
    body: RunIn,
    org_id: OrgAdminId,
    session: SessionDep,
    request: Request,
    background: BackgroundTasks,
) -> RunCreatedOut:
    """Queue a cohort run: the best assignment of the program's unmatched mentees to
    mentors with open places. Poll `GET /v1/matching-runs/{id}` for its progress."""
    options: dict[str, Any] = body.model_dump(mode="json")
    run = await domain.create_run(session, org_id, program_id, options)
    # Woken after the response, when the request's transaction has committed the row.
    background.add_task(request.app.state.run_worker.wake)
    return RunCreatedOut(id=run.id, status="pending")


@router.get("/v1/programs/{program_id}/matching-runs", response_model=Page[RunSummaryOut])
async def list_runs(
    program_id: uuid.UUID,
    org_id: OrgAdminId,
    session: SessionDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[RunSummaryOut]:
    """A program's runs, newest first (without their proposals)."""
    runs = await domain.list_runs(
        session, org_id, program_id, decode_created_after(cursor), limit + 1
    )
    return page_of(runs, limit, RunSummaryOut.model_validate, encode_created_after)


@router.get("/v1/matching-runs/{run_id}", response_model=RunOut)
async def get_run(run_id: uuid.UUID, org_id: OrgAdminId, session: SessionDep) -> RunOut:
    """A run: status and progress; once succeeded, its total score, proposals (with
    explanations) and unmatched mentees with the reason for each."""
    return RunOut.model_validate(await domain.get_run(session, org_id, run_id))


@router.post("/v1/matching-runs/{run_id}/apply", response_model=ApplyOut)
async def apply_run(run_id: uuid.UUID, org_id: OrgAdminId, session: SessionDep) -> ApplyOut:
    """Turn a succeeded run's proposals into proposed matches, re-checking places and
    rules as they are now; what no longer fits is reported as skipped."""
    applied = await domain.apply_run(session, org_id, run_id)
    return ApplyOut(
        run_id=run_id,
        created=len(applied.created),
        match_ids=[m["id"] for m in applied.created],
        skipped=[SkippedOut.model_validate(s) for s in applied.skipped],
    )
