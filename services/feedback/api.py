"""Feedback HTTP routes (feedback, goals, tracks, agreements, analytics) behind the gateway."""

from fastapi import APIRouter

from shared.identity import require_scope

router = APIRouter(dependencies=[require_scope("feedback")])
