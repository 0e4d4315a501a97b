"""The signature of sitewatch's own webhooks, the box's and the server's alike: the
receiver recomputes the HMAC-SHA256 of the raw body with the shared secret."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Sitewatch-Signature"


def webhook_signature(secret: str | bytes, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, body)>``, the value of :data:`SIGNATURE_HEADER`."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
