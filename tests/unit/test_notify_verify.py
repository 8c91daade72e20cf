"""The receivers' verifier (ingestion/notifications/verify.py) against the sender's signing
(signing.py): what one signs the other accepts, and nothing else."""

from __future__ import annotations

import pytest

from ingestion.notifications.signing import endpoint_secret, headers, signing_generations
from ingestion.notifications.verify import WebhookVerificationError, verify

MASTER = b"m" * 32
BODY = b'{"id":"n1","type":"invoice.finalized"}'


def _signed(generations: list[int], at: int = 1_700_000_000) -> dict[str, str]:
    return headers(MASTER, "ep_1", generations, "n1", at, BODY)


def test_the_secret_of_the_generation_verifies_and_header_case_does_not_matter() -> None:
    signed = {k.upper(): v for k, v in _signed([1]).items()}
    assert verify(endpoint_secret(MASTER, "ep_1", 1), signed, BODY, now=1_700_000_100) == "n1"


@pytest.mark.parametrize(
    ("secret", "body", "now", "message"),
    [
        (endpoint_secret(MASTER, "ep_1", 2), BODY, 1_700_000_000, "no valid signature"),
        (endpoint_secret(MASTER, "ep_2", 1), BODY, 1_700_000_000, "no valid signature"),
        (endpoint_secret(b"x" * 32, "ep_1", 1), BODY, 1_700_000_000, "no valid signature"),
        (endpoint_secret(MASTER, "ep_1", 1), BODY + b" ", 1_700_000_000, "no valid signature"),
        (endpoint_secret(MASTER, "ep_1", 1), BODY, 1_700_000_301, "5 minutes"),
        (endpoint_secret(MASTER, "ep_1", 1), BODY, 1_699_999_699, "5 minutes"),
        ("not-a-secret", BODY, 1_700_000_000, "whsec_"),
    ],
)
def test_anything_else_is_refused(secret: str, body: bytes, now: int, message: str) -> None:
    with pytest.raises(WebhookVerificationError, match=message):
        verify(secret, _signed([1]), body, now=now)


def test_missing_headers_are_refused() -> None:
    signed = _signed([1])
    del signed["webhook-signature"]
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify(endpoint_secret(MASTER, "ep_1", 1), signed, BODY, now=1_700_000_000)


def test_the_previous_generation_signs_only_during_the_grace() -> None:
    from datetime import datetime

    until = datetime(2026, 1, 2)
    assert signing_generations(3, until, datetime(2026, 1, 1)) == [3, 2]
    assert signing_generations(3, until, datetime(2026, 1, 2)) == [3]
    assert signing_generations(1, None, datetime(2026, 1, 1)) == [1]
    both = _signed([3, 2])
    for generation in (2, 3):
        secret = endpoint_secret(MASTER, "ep_1", generation)
        assert verify(secret, both, BODY, now=1_700_000_000) == "n1"
