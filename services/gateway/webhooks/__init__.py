"""Webhooks: subscriptions, signed deliveries with retries, and the SSRF guard.

The gateway owns the subscription and delivery tables; its consumer records a pending
delivery per matching subscription in the same transaction as the inbox row, and the
delivery worker (`delivery.py`) posts them."""

from services.gateway.webhooks import api, app

__all__ = ["api", "app"]
