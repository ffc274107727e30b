"""Print the public API's OpenAPI document without a running system, for the console's
build: the same merge as the gateway's `GET /openapi.json` (`merge_openapi`) over each
service's app, built in-process (no database, broker or network is touched)."""

import importlib
import json
import sys
from typing import Any

from fastapi import FastAPI

from services.gateway.api import UPSTREAMS
from services.gateway.openapi import merge_openapi


def public_openapi() -> dict[str, Any]:
    """The merged document, as `/openapi.json` serves it minus `servers` (per request)."""

    def app_of(service: str) -> FastAPI:
        app: FastAPI = importlib.import_module(f"services.{service}.app").app
        return app

    specs = {service: app_of(service).openapi() for service in UPSTREAMS}
    return merge_openapi(app_of("gateway").openapi(), specs)


if __name__ == "__main__":
    json.dump(public_openapi(), sys.stdout)
