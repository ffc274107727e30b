"""Gateway authentication: `Authorization: Bearer <admin token | API key>` -> the caller."""

from typing import Annotated

from fastapi import Depends, Request

from services.gateway import domain
from services.gateway.settings import GatewaySettings
from shared.errors import Unauthorized
from shared.identity import Caller
from shared.service import SessionDep


async def authenticate(request: Request, session: SessionDep) -> Caller:
    """`Authorization: Bearer <admin token | API key>` -> the caller."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <API key>")
    token = token.strip()
    settings: GatewaySettings = request.app.state.settings
    if domain.is_admin_token(token, settings.admin_token):
        return Caller(org_id=None, is_admin=True)
    api_key = await domain.find_active_key(session, token)
    if api_key is None:
        raise Unauthorized("unknown or revoked API key")
    return Caller(org_id=api_key.org_id, is_admin=False, scopes=tuple(api_key.scopes))


CallerDep = Annotated[Caller, Depends(authenticate)]
