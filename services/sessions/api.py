"""Sessions HTTP routes (availability, slots, sessions, calendars) behind the gateway."""

from fastapi import APIRouter

router = APIRouter()
