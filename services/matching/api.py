"""Matching HTTP routes (suggestions, matches, runs) behind the gateway: thin, they parse,
call the domain, and shape the answer."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response

from services.matching import directory, domain, lifecycle
from services.matching import runs as run_domain
from services.matching.models import Match
from services.matching.schemas import (
    ApplyOut,
    CriterionOut,
    DirectoryEntryOut,
    EndIn,
    GroupMemberOut,
    GroupOut,
    MatchIn,
    MatchOut,
    MatchStatus,
    MenteeSuggestionOut,
    RunCreatedOut,
    RunIn,
    RunOut,
    RunSummaryOut,
    SkippedOut,
    SuggestionOut,
    SuggestionsOut,
)
from shared.errors import Forbidden, NotFound
from shared.identity import Caller, OrgAdminId, OrgCaller, OrgId, require_scope
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

router = APIRouter(tags=["matching"], dependencies=[require_scope("matching")])


def _org(caller: Caller) -> uuid.UUID:
    assert caller.org_id is not None  # OrgCaller guarantees it
    return caller.org_id


async def _visible_match(session: SessionDep, caller: Caller, match_id: uuid.UUID) -> Match:
    """A match the caller may see: a member only one they are in (else a 404)."""
    match = await lifecycle.get_match(session, _org(caller), match_id)
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
    """The best matches for an enrollment, best first, each with its score broken down per
    criterion and reasons in plain words: mentors for a mentee, mentees (`mentee_*` fields)
    for a mentor enrollment, partners for a peer (scored both ways). Pairs the hard rules
    exclude, and pairs that declined or ended before in the program, never appear."""
    org_id = _org(caller)
    if caller.is_member:
        mine = await domain.get_enrollment(session, org_id, program_id, enrollment_id)
        if mine.employee_external_id != caller.subject:
            raise NotFound(f"enrollment {enrollment_id} not found in program {program_id}")
    found = await domain.suggestions(session, org_id, program_id, enrollment_id, limit)
    if any(s.side == "mentee" for s in found):
        return SuggestionsOut(
            items=[
                MenteeSuggestionOut(
                    mentee_enrollment_id=s.other.enrollment_id,
                    mentee_external_id=s.other.external_id,
                    score=round(s.explanation.score, 6),
                    breakdown=_criteria_out(s),
                    reasons=list(s.explanation.reasons),
                )
                for s in found
            ]
        )
    return SuggestionsOut(
        items=[
            SuggestionOut(
                mentor_enrollment_id=s.other.enrollment_id,
                mentor_external_id=s.other.external_id,
                score=round(s.explanation.score, 6),
                breakdown=_criteria_out(s),
                reasons=list(s.explanation.reasons),
            )
            for s in found
        ]
    )


def _criteria_out(s: domain.Suggestion) -> list[CriterionOut]:
    return [
        CriterionOut(
            criterion=c.criterion,
            value=round(c.value, 6),
            weight=c.weight,
            contribution=round(c.contribution, 6),
        )
        for c in s.explanation.breakdown
    ]


@router.get("/v1/programs/{program_id}/mentors", response_model=Page[DirectoryEntryOut])
async def mentor_directory(
    program_id: uuid.UUID,
    org_id: OrgId,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=200, description="Words to look for")] = None,
    skill: Annotated[str | None, Query(max_length=100)] = None,
    language: Annotated[str | None, Query(max_length=35, description="BCP 47 code")] = None,
    has_capacity: bool = False,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[DirectoryEntryOut]:
    """The program's mentors, ranked by relevance to the query (skill levels first, then
    places left), filtered by words (`q`: skills, department, title, id), a skill, a
    language, and whether they have a place left; each entry says why it ranks there."""
    where = directory.Query(q, skill, language, has_capacity)
    offset = directory.decode_offset(cursor)
    entries = await directory.search(session, org_id, program_id, where, offset, limit + 1)
    more = len(entries) > limit
    return Page[DirectoryEntryOut](
        items=[DirectoryEntryOut.model_validate(e, from_attributes=True) for e in entries[:limit]],
        next_cursor=directory.encode_offset(offset + limit) if more else None,
    )


@router.get("/v1/groups/{group_id}", response_model=GroupOut)
async def get_group(group_id: uuid.UUID, org_id: OrgId, session: SessionDep) -> GroupOut:
    """A circle of a group program: its mentor and its members, each through their match
    (members whose match ended are listed with that status)."""
    matches = await lifecycle.group_matches(session, org_id, group_id)
    first = matches[0]
    return GroupOut(
        id=group_id,
        program_id=first.program_id,
        mentor_enrollment_id=first.mentor_enrollment_id,
        mentor_external_id=first.mentor_external_id,
        active_members=sum(m.status == "active" for m in matches),
        members=[
            GroupMemberOut(
                match_id=m.id,
                mentee_enrollment_id=m.mentee_enrollment_id,
                mentee_external_id=m.mentee_external_id,
                status=m.status,
                score=m.score,
            )
            for m in matches
        ],
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
    match = await lifecycle.create_match(
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
    where = lifecycle.MatchFilter(
        program_id,
        status,
        mentee_enrollment_id,
        mentor_enrollment_id,
        run_id,
        participant=caller.subject if caller.is_member else None,
    )
    matches = await lifecycle.list_matches(
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
    return _match_out(await lifecycle.accept_match(session, _org(caller), match_id), response)


@router.post("/v1/matches/{match_id}/decline", response_model=MatchOut)
async def decline_match(
    match_id: uuid.UUID, caller: OrgCaller, session: SessionDep, response: Response
) -> MatchOut:
    """The mentor declines a proposed match."""
    await _as_mentor(session, caller, match_id)
    return _match_out(await lifecycle.decline_match(session, _org(caller), match_id), response)


@router.post("/v1/matches/{match_id}/end", response_model=MatchOut)
async def end_match(
    match_id: uuid.UUID, body: EndIn, caller: OrgCaller, session: SessionDep, response: Response
) -> MatchOut:
    """End a proposed or active match early, saying why (a member: one they are in)."""
    await _visible_match(session, caller, match_id)
    ended = await lifecycle.end_match(session, _org(caller), match_id, body.reason)
    return _match_out(ended, response)


@router.post("/v1/matches/{match_id}/complete", response_model=MatchOut)
async def complete_match(
    match_id: uuid.UUID, caller: OrgCaller, session: SessionDep, response: Response
) -> MatchOut:
    """An active match ran its course (a member: one they are in)."""
    await _visible_match(session, caller, match_id)
    return _match_out(await lifecycle.complete_match(session, _org(caller), match_id), response)


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
    mentors with open places. Poll `GET /v1/matching-runs/{id}` for its progress.
    409 when the program already has as many runs pending or running as allowed
    (`MENTORBUS_MATCHING_MAX_OPEN_RUNS_PER_PROGRAM`, default 2)."""
    options: dict[str, Any] = body.model_dump(mode="json")
    run = await run_domain.create_run(
        session, org_id, program_id, options, max_open=request.app.state.max_open_runs
    )
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
    runs = await run_domain.list_runs(
        session, org_id, program_id, decode_created_after(cursor), limit + 1
    )
    return page_of(runs, limit, RunSummaryOut.model_validate, encode_created_after)


@router.get("/v1/matching-runs/{run_id}", response_model=RunOut)
async def get_run(run_id: uuid.UUID, org_id: OrgAdminId, session: SessionDep) -> RunOut:
    """A run: status and progress; once succeeded, its total score, proposals (with
    explanations) and unmatched mentees with the reason for each."""
    return RunOut.model_validate(await run_domain.get_run(session, org_id, run_id))


@router.post("/v1/matching-runs/{run_id}/apply", response_model=ApplyOut)
async def apply_run(run_id: uuid.UUID, org_id: OrgAdminId, session: SessionDep) -> ApplyOut:
    """Turn a succeeded run's proposals into proposed matches, re-checking places and
    rules as they are now; what no longer fits is reported as skipped."""
    applied = await run_domain.apply_run(session, org_id, run_id)
    return ApplyOut(
        run_id=run_id,
        created=len(applied.created),
        match_ids=[m["id"] for m in applied.created],
        skipped=[SkippedOut.model_validate(s) for s in applied.skipped],
    )
