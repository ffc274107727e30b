"""Sessions HTTP routes (availability, slots, sessions, calendars) behind the gateway."""

from fastapi import APIRouter

from shared.identity import require_scope

router = APIRouter(dependencies=[require_scope("sessions")])
