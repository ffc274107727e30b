"""Mentoring agreements: a program's template, each active match's agreement, signatures.
No HTTP and no Kafka here.

An agreement is `signed` once both participants signed its current text version; an edit
makes a new version and resets the signatures."""

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.models import (
    Agreement,
    AgreementSignature,
    AgreementTemplate,
    MatchProjection,
)
from services.feedback.participants import acting_participant
from services.feedback.projections import existing_program, visible_match
from services.feedback.risk import Reason, RiskContext, risk_rule
from services.feedback.schemas_tracks import AgreementTerms
from shared.db import utcnow
from shared.errors import Conflict, NotFound
from shared.events import AgreementSignedV1
from shared.identity import Caller
from shared.outbox import add_event

SOURCE = "mentorbus/feedback"
_HEADINGS = (
    ("expectations", "Expectations"),
    ("cadence", "Cadence"),
    ("duration", "Duration"),
    ("confidentiality", "Confidentiality"),
)


def render(terms: dict[str, Any]) -> str:
    """The agreement's text: what both sign."""
    parts = [f"{title}: {terms[key]}" for key, title in _HEADINGS if terms.get(key)]
    if terms.get("goals"):
        parts.append("Goals:\n" + "\n".join(f"- {g}" for g in terms["goals"]))
    return "\n\n".join(parts)


async def put_template(
    session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID, terms: AgreementTerms
) -> AgreementTemplate:
    """Set a program's agreement template (new matches' agreements start from it)."""
    await existing_program(session, org_id, program_id)
    template = await session.get(AgreementTemplate, program_id, with_for_update=True)
    values = terms.model_dump()
    if template is None:
        template = AgreementTemplate(program_id=program_id, org_id=org_id, terms=values, version=1)
        session.add(template)
    elif template.terms != values:
        template.terms = values
        template.version += 1
        template.updated_at = utcnow()
    await session.flush()
    return template


async def get_template(
    session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID
) -> AgreementTemplate:
    """A program's agreement template."""
    await existing_program(session, org_id, program_id)
    template = await session.get(AgreementTemplate, program_id)
    if template is None or template.org_id != org_id:
        raise NotFound(f"program {program_id} has no agreement template")
    return template


async def create_draft(
    session: AsyncSession,
    org_id: uuid.UUID,
    program_id: uuid.UUID,
    match_id: uuid.UUID,
    drafted_at: datetime,
) -> Agreement | None:
    """A match's draft agreement from its program's template, once (None: no template).
    It counts as drafted when the match became active (`drafted_at`)."""
    template = await session.get(AgreementTemplate, program_id)
    if template is None or template.org_id != org_id:
        return None
    await session.execute(
        pg_insert(Agreement)
        .values(
            match_id=match_id,
            org_id=org_id,
            program_id=program_id,
            terms=template.terms,
            text=render(template.terms),
            version=1,
            status="draft",
            created_at=drafted_at,
        )
        .on_conflict_do_nothing()
    )
    return await session.get(Agreement, match_id, populate_existing=True)


async def _agreement(
    session: AsyncSession, match: MatchProjection, *, for_update: bool = False
) -> Agreement:
    found = await session.get(
        Agreement, match.id, populate_existing=True, with_for_update=for_update
    )
    if found is None and match.status in ("active", "completed", "ended"):
        drafted_at = match.activated_at or utcnow()
        found = await create_draft(session, match.org_id, match.program_id, match.id, drafted_at)
    if found is None:
        raise NotFound(f"match {match.id} has no agreement")
    return found


async def _view(session: AsyncSession, agreement: Agreement) -> dict[str, Any]:
    signatures = await session.scalars(
        select(AgreementSignature)
        .where(AgreementSignature.match_id == agreement.match_id)
        .order_by(AgreementSignature.signed_at)
    )
    return {
        "match_id": agreement.match_id,
        "text": agreement.text,
        "terms": agreement.terms,
        "version": agreement.version,
        "status": agreement.status,
        "signatures": [
            {
                "employee_external_id": s.employee_external_id,
                "signed_at": s.signed_at,
                "version": s.version,
            }
            for s in signatures
        ],
        "created_at": agreement.created_at,
        "signed_at": agreement.signed_at,
    }


async def agreement_view(
    session: AsyncSession, caller: Caller, match_id: uuid.UUID
) -> dict[str, Any]:
    """A match's agreement with its signatures."""
    match = await visible_match(session, caller, match_id)
    return await _view(session, await _agreement(session, match))


async def edit_agreement(
    session: AsyncSession, caller: Caller, match_id: uuid.UUID, terms: AgreementTerms
) -> dict[str, Any]:
    """Change a match's agreement (its participants or an admin): a new text version, and
    every signature is reset."""
    match = await visible_match(session, caller, match_id)
    if caller.is_member:
        acting_participant(caller, match, None)
    agreement = await _agreement(session, match, for_update=True)
    values = terms.model_dump()
    if values != agreement.terms:
        agreement.terms = values
        agreement.text = render(values)
        agreement.version += 1
        agreement.status = "draft"
        agreement.signed_at = None
        await session.execute(
            delete(AgreementSignature).where(AgreementSignature.match_id == match_id)
        )
        await session.flush()
    return await _view(session, agreement)


async def sign(
    session: AsyncSession,
    caller: Caller,
    match_id: uuid.UUID,
    employee_external_id: str | None,
    version: int | None,
) -> dict[str, Any]:
    """A participant signs the current text version (again signing it changes nothing);
    a non-participant is refused (403). Both signed: the agreement is `signed`."""
    match = await visible_match(session, caller, match_id)
    actor, _ = acting_participant(caller, match, employee_external_id)
    agreement = await _agreement(session, match, for_update=True)
    if version is not None and version != agreement.version:
        raise Conflict(f"the agreement is at version {agreement.version}, not {version}")
    now = utcnow()
    inserted = await session.scalar(
        pg_insert(AgreementSignature)
        .values(
            match_id=match_id, employee_external_id=actor, version=agreement.version, signed_at=now
        )
        .on_conflict_do_nothing()
        .returning(AgreementSignature.employee_external_id)
    )
    if inserted is not None:
        signed = set(
            await session.scalars(
                select(AgreementSignature.employee_external_id).where(
                    AgreementSignature.match_id == match_id,
                    AgreementSignature.version == agreement.version,
                )
            )
        )
        fully = set(match.participants()) <= signed
        if fully:
            agreement.status, agreement.signed_at = "signed", now
        event = AgreementSignedV1(
            match_id=match_id,
            program_id=agreement.program_id,
            version=agreement.version,
            employee_external_id=actor,
            signed_at=now,
            fully_signed=fully,
        )
        add_event(session, event, source=SOURCE, orgid=agreement.org_id)
        await session.flush()
    return await _view(session, agreement)


@risk_rule
async def unsigned_agreement(
    session: AsyncSession, context: RiskContext
) -> dict[uuid.UUID, Reason]:
    """At risk: an active match whose agreement is still unsigned N days (setting
    `at_risk_agreement_unsigned_days`, default 14) after it was drafted."""
    days = context.settings.at_risk_agreement_unsigned_days
    rows = await session.execute(
        select(Agreement.match_id, Agreement.created_at).where(
            Agreement.match_id.in_(context.match_ids),
            Agreement.status == "draft",
            Agreement.created_at <= context.now - timedelta(days=days),
        )
    )
    return {
        match_id: Reason(
            "agreement_unsigned",
            f"agreement unsigned {(context.now - created).days} days after it was drafted",
        )
        for match_id, created in rows.all()
    }
