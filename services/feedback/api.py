"""Feedback HTTP routes (feedback, goals, tracks, agreements, analytics) behind the gateway."""

from fastapi import APIRouter

router = APIRouter()
