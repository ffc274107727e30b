"""A gateway whose console was never built says so at /console (503 problem+json naming
the build), rather than a bare 404."""

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.gateway import app as gateway_app


async def test_unbuilt_console_answers_503_naming_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway_app, "CONSOLE_DIST", tmp_path / "dist")
    app = FastAPI()
    gateway_app._mount_console(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        for path in ("/console", "/console/console.js"):
            answer = await client.get(path)
            assert answer.status_code == 503
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["title"] == "Console not built"
            assert "scripts/bootstrap" in answer.json()["detail"]
