"""Wiring of webhooks into the gateway app: settings, secret box, delivery worker."""

from fastapi import FastAPI

from services.gateway.settings import GatewaySettings
from services.gateway.webhooks.api import router
from services.gateway.webhooks.delivery import DeliveryWorker
from services.gateway.webhooks.secrets import SecretBox
from services.gateway.webhooks.settings import WebhookSettings

__all__ = ["router", "start", "stop"]


async def start(app: FastAPI, settings: GatewaySettings) -> None:
    """Read webhook settings and start this replica's delivery worker."""
    webhook_settings = WebhookSettings()
    box = SecretBox(webhook_settings.secret_key)
    app.state.webhook_settings = webhook_settings
    app.state.webhook_box = box
    app.state.webhook_worker = DeliveryWorker(
        settings=webhook_settings,
        database_url=settings.database_url,
        sessionmaker=app.state.sessionmaker,
        box=box,
    )
    app.state.webhook_worker.start()


async def stop(app: FastAPI) -> None:
    """Stop the delivery worker."""
    await app.state.webhook_worker.stop()
