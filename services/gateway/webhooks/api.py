"""Webhook routes (`/v1/webhooks...`), answered by the gateway itself; they need the
`webhooks` scope (`webhooks:read` to look, `webhooks:write` to change)."""

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from services.gateway import domain as gateway_domain
from services.gateway.api import CallerDep
from services.gateway.webhooks import domain
from services.gateway.webhooks.schemas import (
    DeliveryOut,
    SecretRotated,
    SecretRotationIn,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookPatch,
)
from services.gateway.webhooks.secrets import SecretBox
from services.gateway.webhooks.settings import WebhookSettings
from shared.errors import FieldError, Forbidden, InvalidInput
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
from shared.service import SessionDep

router = APIRouter(tags=["webhooks"])


def _org_with_scope(caller: CallerDep, request: Request) -> uuid.UUID:
    """The caller's organization, if its key holds the `webhooks` scope for this method."""
    if caller.org_id is None:
        raise Forbidden("use an organization API key for this operation")
    if caller.is_member:
        raise Forbidden("webhooks need organization-wide access")
    needed = "webhooks:read" if request.method == "GET" else "webhooks:write"
    if not gateway_domain.scope_allows(list(caller.scopes), needed):
        raise Forbidden(f"this API key lacks the scope {needed}")
    return caller.org_id


WebhookOrg = Annotated[uuid.UUID, Depends(_org_with_scope)]


def _settings(request: Request) -> WebhookSettings:
    settings: WebhookSettings = request.app.state.webhook_settings
    return settings


def _box(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.webhook_box
    return box


SettingsDep = Annotated[WebhookSettings, Depends(_settings)]
BoxDep = Annotated[SecretBox, Depends(_box)]


@router.post("/v1/webhooks", status_code=201, response_model=WebhookCreated)
async def create_webhook(
    body: WebhookIn, org_id: WebhookOrg, session: SessionDep, settings: SettingsDep, box: BoxDep
) -> WebhookCreated:
    """Subscribe a URL to event types; the signing `secret` is shown only in this answer.
    The URL must be https and must not point at a private, loopback or link-local address
    (422 naming `url`)."""
    webhook, secret = await domain.create_webhook(session, org_id, body, settings, box)
    return WebhookCreated.model_validate(
        {**WebhookOut.model_validate(webhook).model_dump(), "secret": secret}
    )


@router.get("/v1/webhooks", response_model=Page[WebhookOut])
async def list_webhooks(
    org_id: WebhookOrg, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[WebhookOut]:
    """The organization's webhooks, oldest first."""
    webhooks = await domain.list_webhooks(
        session, org_id, after=decode_created_after(cursor), limit=limit + 1
    )
    return page_of(webhooks, limit, WebhookOut.model_validate, encode_created_after)


@router.get("/v1/webhooks/{webhook_id}", response_model=WebhookOut)
async def get_webhook(webhook_id: uuid.UUID, org_id: WebhookOrg, session: SessionDep) -> WebhookOut:
    """One webhook (another organization's is a 404)."""
    return WebhookOut.model_validate(await domain.get_webhook(session, org_id, webhook_id))


@router.patch("/v1/webhooks/{webhook_id}", response_model=WebhookOut)
async def update_webhook(
    webhook_id: uuid.UUID,
    body: WebhookPatch,
    org_id: WebhookOrg,
    session: SessionDep,
    settings: SettingsDep,
) -> WebhookOut:
    """Change the URL, event types, description or status; `status: active` re-enables a
    webhook that was disabled after a run of failures and resumes its pending deliveries."""
    webhook = await domain.update_webhook(session, org_id, webhook_id, body, settings)
    return WebhookOut.model_validate(webhook)


@router.delete("/v1/webhooks/{webhook_id}", status_code=204)
async def delete_webhook(
    webhook_id: uuid.UUID, org_id: WebhookOrg, session: SessionDep
) -> Response:
    """Unsubscribe; pending deliveries are dropped with it."""
    await domain.delete_webhook(session, org_id, webhook_id)
    return Response(status_code=204)


@router.post("/v1/webhooks/{webhook_id}/rotate-secret", response_model=SecretRotated)
async def rotate_secret(
    webhook_id: uuid.UUID,
    org_id: WebhookOrg,
    session: SessionDep,
    settings: SettingsDep,
    box: BoxDep,
    body: SecretRotationIn | None = None,
) -> SecretRotated:
    """A new signing secret, shown only here. Until `previous_secret_expires_at` (the
    grace period, default 24 h) each delivery carries a signature by each secret."""
    seconds = body.grace_period_seconds if body and body.grace_period_seconds is not None else None
    grace = timedelta(seconds=settings.rotation_grace_seconds if seconds is None else seconds)
    webhook, secret = await domain.rotate_secret(session, org_id, webhook_id, grace, box)
    return SecretRotated(
        secret=secret, previous_secret_expires_at=webhook.previous_secret_expires_at
    )


@router.get("/v1/webhooks/{webhook_id}/deliveries", response_model=Page[DeliveryOut])
async def list_deliveries(
    webhook_id: uuid.UUID,
    org_id: WebhookOrg,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[DeliveryOut]:
    """The delivery log, newest first: each event's status (`pending`, `succeeded`,
    `failed`), attempts, last status code or error, and when the next attempt is due."""
    position = decode_cursor(cursor)
    before = position.get("seq") if position else None
    if position is not None and not isinstance(before, int):
        raise InvalidInput([FieldError("cursor", "not a valid cursor")])
    deliveries = await domain.list_deliveries(
        session, org_id, webhook_id, before_seq=before, limit=limit + 1
    )
    return page_of(
        deliveries, limit, DeliveryOut.model_validate, lambda d: encode_cursor({"seq": d.seq})
    )


@router.post(
    "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryOut,
)
async def redeliver(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, org_id: WebhookOrg, session: SessionDep
) -> DeliveryOut:
    """Post this delivery again now (one more attempt, whatever its status; same
    `webhook-id`, so a receiver that already has it can tell)."""
    delivery = await domain.redeliver(session, org_id, webhook_id, delivery_id)
    return DeliveryOut.model_validate(delivery)
