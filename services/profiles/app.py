"""Profiles service: `uvicorn services.profiles.app:app`."""

from pathlib import Path
from typing import cast

from starlette.types import ASGIApp

from services.profiles import api, api_programs, scim, scim_openapi
from services.profiles.settings import ProfilesSettings
from shared.identity import ScopeGuard
from shared.service import create_service_app

settings = ProfilesSettings()
app = create_service_app(
    settings=settings,
    routers=[api.router, api_programs.router],
    migrations=Path(__file__).parent / "migrations",
    openapi_extend=scim_openapi.extend,
    pool=True,  # services/profiles/reads.py
)
# SCIM 2.0 speaks its own protocol (scim+json, its error schema): scim2-server serves it.
app.mount("/scim", ScopeGuard(cast(ASGIApp, scim.application(settings.gateway_url)), "scim"))
