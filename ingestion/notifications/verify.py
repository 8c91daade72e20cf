"""Verifying a ValueVerse webhook, for receivers: standard library only, copy it as is.

Every delivery is a POST of a JSON body with three headers (the Standard Webhooks scheme):

- `webhook-id`: the notification's id; the same on every retry and replay, so a receiver
  that has processed an id once can ignore it the next time (deliveries are at least once);
- `webhook-timestamp`: seconds since the epoch when this attempt was signed;
- `webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, several
  separated by spaces while a rotated secret's grace period runs (any one valid suffices).

The secret is the `whsec_<base64>` string `valueverse webhooks add` or `rotate-secret`
printed; its base64 part decoded is the HMAC key. A timestamp more than five minutes from the
receiver's clock is refused, so a captured request cannot be replayed later.

    from verify import verify, WebhookVerificationError
    try:
        verify(secret, request.headers, request.body)   # body: the raw bytes, unparsed
    except WebhookVerificationError:
        return 400
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

TOLERANCE_SECONDS = 300
# the secrets' format prefix, not a secret
SECRET_PREFIX = "whsec_"  # nosec B105


class WebhookVerificationError(ValueError):
    """The request is not a valid, current ValueVerse delivery."""


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a `whsec_...` secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise WebhookVerificationError("the secret must start with whsec_")
    return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64>`: the signature of one attempt under one key."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None) -> str:
    """Check the headers against the body; return the webhook id (the receiver's dedup key).
    Header names are matched without regard to case."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    stamp = lowered.get("webhook-timestamp", "")
    sent = lowered.get("webhook-signature", "")
    if not (msg_id and stamp and sent):
        raise WebhookVerificationError("missing webhook-id, -timestamp or -signature header")
    if not stamp.isdigit() or len(stamp) > 12:
        raise WebhookVerificationError("webhook-timestamp is not whole seconds")
    clock = time.time() if now is None else now
    if abs(clock - int(stamp)) > TOLERANCE_SECONDS:
        raise WebhookVerificationError("webhook-timestamp is more than 5 minutes off")
    expected = signature(secret_key(secret), msg_id, int(stamp), body)
    # compare_digest: the time taken does not tell an attacker how much of a guess was right
    if not any(hmac.compare_digest(expected.encode(), s.encode()) for s in sent.split(" ")):
        raise WebhookVerificationError("no valid signature")
    return msg_id
