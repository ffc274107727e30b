"""Signing secrets: generated as Standard Webhooks `whsec_` secrets, stored encrypted."""

import base64
import secrets
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from standardwebhooks.webhooks import Webhook as Signer

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret (24 random bytes, as Standard Webhooks recommends)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


class SecretBox:
    """Encrypts secrets at rest with the configured key(s): the first key encrypts, every
    key decrypts, so the key itself can be rotated."""

    def __init__(self, keys: str) -> None:
        self._fernet = MultiFernet([Fernet(k.strip()) for k in keys.split(",") if k.strip()])

    def seal(self, secret: str) -> bytes:
        """The stored form of a secret."""
        return self._fernet.encrypt(secret.encode())

    def open(self, sealed: bytes) -> str:
        """The secret back; raises ValueError if no configured key opens it."""
        try:
            return self._fernet.decrypt(sealed).decode()
        except InvalidToken:
            raise ValueError("no configured webhook secret key opens this secret") from None


def signature_header(
    secrets_in_use: list[str], message_id: str, timestamp: datetime, body: str
) -> str:
    """`webhook-signature`: one `v1,<sig>` per valid secret, space-separated, so receivers
    holding either the new or the previous secret verify during a rotation."""
    return " ".join(Signer(s).sign(message_id, timestamp, body) for s in secrets_in_use)
