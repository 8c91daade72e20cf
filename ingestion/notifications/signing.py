"""Endpoint secrets derived from one master key, and the headers that sign a delivery.

Why derived and not stored: the warehouse is read by many (dashboards, analysts, backups); a
secret stored there would let any of them forge deliveries. An endpoint's secret is
HMAC-SHA256(master key, "<endpoint id>:<generation>"): the warehouse keeps only the generation
(bumped by a rotation) and when the previous generation stops signing. Whoever holds the
master key (VALUEVERSE_WEBHOOK_SIGNING_KEY, environment only) can re-derive any secret, so
that key is the one thing to protect and rotate with care (rotating it changes every secret).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from ingestion.notifications.verify import SECRET_PREFIX, signature


def endpoint_key(master: bytes, endpoint_id: str, generation: int) -> bytes:
    return hmac.new(master, f"{endpoint_id}:{generation}".encode(), hashlib.sha256).digest()


def endpoint_secret(master: bytes, endpoint_id: str, generation: int) -> str:
    """The `whsec_<base64>` form a receiver configures (the Standard Webhooks encoding)."""
    return SECRET_PREFIX + base64.b64encode(endpoint_key(master, endpoint_id, generation)).decode()


def signing_generations(
    generation: int, previous_valid_until: datetime | None, now: datetime
) -> list[int]:
    """The generations that sign at `now`: the current one, and the previous one during a
    rotation's grace period (so a receiver may switch secrets at any moment within it)."""
    if previous_valid_until is not None and now < previous_valid_until and generation > 1:
        return [generation, generation - 1]
    return [generation]


def headers(
    master: bytes, endpoint_id: str, generations: list[int], msg_id: str, timestamp: int,
    body: bytes,
) -> dict[str, str]:  # fmt: skip
    """The three webhook headers of one attempt."""
    signatures = " ".join(
        signature(endpoint_key(master, endpoint_id, g), msg_id, timestamp, body)
        for g in generations
    )
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
    }
