"""HTTP routes of learning tracks, mentoring agreements and outcomes: thin, they parse,
call the domain, and shape the answer."""

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Path, Response

from services.feedback import agreements, outcomes, tracks
from services.feedback.models import AgreementTemplate, Track
from services.feedback.schemas_tracks import (
    AgreementOut,
    AgreementTemplateOut,
    AgreementTerms,
    CompleteStepIn,
    MatchTrackOut,
    MoveTrackIn,
    Outcomes,
    SignIn,
    TrackCopyIn,
    TrackIn,
    TrackOut,
    TrackPatch,
)
from shared.identity import OrgAdminId, OrgCaller, require_scope
from shared.pagination import (
    Cursor,
    Limit,
    Page,
    decode_created_after,
    encode_created_after,
    page_of,
)
from shared.service import SessionDep

router = APIRouter(tags=["tracks"], dependencies=[require_scope("feedback")])

StepId = Annotated[str, Path(min_length=1, max_length=64)]


def _track_out(track: Track) -> TrackOut:
    return TrackOut.model_validate(track, from_attributes=True)


def _template_out(template: AgreementTemplate) -> AgreementTemplateOut:
    return AgreementTemplateOut(
        program_id=template.program_id, version=template.version, **template.terms
    )


@router.post("/v1/programs/{program_id}/tracks", status_code=201, response_model=TrackOut)
async def create_track(
    program_id: uuid.UUID, body: TrackIn, org_id: OrgAdminId, session: SessionDep
) -> TrackOut:
    """Define a learning track in a program (from modules, or a built-in template)."""
    return _track_out(await tracks.create_track(session, org_id, program_id, body))


@router.get("/v1/programs/{program_id}/tracks", response_model=Page[TrackOut])
async def list_tracks(
    program_id: uuid.UUID,
    org_id: OrgAdminId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TrackOut]:
    """A program's tracks, oldest first."""
    after = decode_created_after(cursor)
    found = await tracks.list_tracks(session, org_id, program_id, after, limit + 1)
    return page_of(found, limit, _track_out, encode_created_after)


@router.get("/v1/tracks/{track_id}", response_model=TrackOut)
async def get_track(track_id: uuid.UUID, org_id: OrgAdminId, session: SessionDep) -> TrackOut:
    """A track, at its current version."""
    return _track_out(await tracks.get_track(session, org_id, track_id))


@router.patch("/v1/tracks/{track_id}", response_model=TrackOut)
async def edit_track(
    track_id: uuid.UUID, body: TrackPatch, org_id: OrgAdminId, session: SessionDep
) -> TrackOut:
    """Edit a track; changed modules make a new version (matches keep the one they have)."""
    return _track_out(await tracks.edit_track(session, org_id, track_id, body))


@router.post("/v1/tracks/{track_id}/copy", status_code=201, response_model=TrackOut)
async def copy_track(
    track_id: uuid.UUID, body: TrackCopyIn, org_id: OrgAdminId, session: SessionDep
) -> TrackOut:
    """Copy a track's current version into a program (a template for another program)."""
    return _track_out(await tracks.copy_track(session, org_id, track_id, body))


@router.get("/v1/matches/{match_id}/track", response_model=MatchTrackOut)
async def match_track(match_id: uuid.UUID, caller: OrgCaller, session: SessionDep) -> MatchTrackOut:
    """A match's track: every step with its status (open, done, overdue) and completions."""
    view = await tracks.match_track_view(session, caller, match_id, date.today())
    return MatchTrackOut.model_validate(view)


@router.patch("/v1/matches/{match_id}/track", response_model=MatchTrackOut)
async def move_match_track(
    match_id: uuid.UUID, body: MoveTrackIn, org_id: OrgAdminId, session: SessionDep
) -> MatchTrackOut:
    """Move a match to another track of its program or another version (admins)."""
    view = await tracks.move_match_track(
        session, org_id, match_id, body.track_id, body.version, date.today()
    )
    return MatchTrackOut.model_validate(view)


@router.post("/v1/matches/{match_id}/track/steps/{step_id}/complete", response_model=MatchTrackOut)
async def complete_step(
    match_id: uuid.UUID,
    step_id: StepId,
    caller: OrgCaller,
    session: SessionDep,
    body: CompleteStepIn | None = None,
) -> MatchTrackOut:
    """Complete a participant's part of a step (idempotent; participants or an admin)."""
    actor = body.employee_external_id if body else None
    view = await tracks.complete_step(session, caller, match_id, step_id, actor, date.today())
    return MatchTrackOut.model_validate(view)


@router.put("/v1/programs/{program_id}/agreement-template", response_model=AgreementTemplateOut)
async def put_agreement_template(
    program_id: uuid.UUID, body: AgreementTerms, org_id: OrgAdminId, session: SessionDep
) -> AgreementTemplateOut:
    """Set the agreement template new matches of the program start from."""
    return _template_out(await agreements.put_template(session, org_id, program_id, body))


@router.get("/v1/programs/{program_id}/agreement-template", response_model=AgreementTemplateOut)
async def get_agreement_template(
    program_id: uuid.UUID, org_id: OrgAdminId, session: SessionDep
) -> AgreementTemplateOut:
    """A program's agreement template."""
    return _template_out(await agreements.get_template(session, org_id, program_id))


@router.get("/v1/matches/{match_id}/agreement", response_model=AgreementOut)
async def get_agreement(
    match_id: uuid.UUID, caller: OrgCaller, session: SessionDep
) -> AgreementOut:
    """A match's agreement: text, version, status and signatures."""
    return AgreementOut.model_validate(await agreements.agreement_view(session, caller, match_id))


@router.patch("/v1/matches/{match_id}/agreement", response_model=AgreementOut)
async def edit_agreement(
    match_id: uuid.UUID, body: AgreementTerms, caller: OrgCaller, session: SessionDep
) -> AgreementOut:
    """Change a match's agreement: a new text version; signatures are reset."""
    view = await agreements.edit_agreement(session, caller, match_id, body)
    return AgreementOut.model_validate(view)


@router.post("/v1/matches/{match_id}/agreement/sign", response_model=AgreementOut)
async def sign_agreement(
    match_id: uuid.UUID, body: SignIn, caller: OrgCaller, session: SessionDep
) -> AgreementOut:
    """Sign the agreement's current version (participants only; idempotent)."""
    view = await agreements.sign(session, caller, match_id, body.employee_external_id, body.version)
    return AgreementOut.model_validate(view)


@router.get(
    "/v1/programs/{program_id}/outcomes",
    response_model=Outcomes,
    responses={200: {"content": {"text/csv": {}}}},
)
async def program_outcomes(
    program_id: uuid.UUID,
    org_id: OrgAdminId,
    session: SessionDep,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Retention, promotions, network reach, track and agreement figures of a program,
    participants beside the comparison group, each with its counts and definition (JSON,
    or CSV with `Accept: text/csv`)."""
    figures = await outcomes.program_outcomes(session, org_id, program_id, date.today())
    if accept is not None and "text/csv" in accept:
        return Response(outcomes.as_csv(figures), media_type="text/csv")
    return Response(
        Outcomes.model_validate(figures).model_dump_json(), media_type="application/json"
    )
