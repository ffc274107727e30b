"""Matching HTTP routes (suggestions, matches, runs) behind the gateway."""

from fastapi import APIRouter

router = APIRouter()
