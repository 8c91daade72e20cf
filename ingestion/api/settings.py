"""The usage API's settings, from the environment (checked: a bad value is one line naming it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal

from ingestion.warehouse import env_decimal, env_int


@dataclass(frozen=True)
class ApiSettings:
    max_events: int = 1000  # per request
    max_body_bytes: int = 1024 * 1024
    produce_timeout: float = 5.0  # seconds to wait for the broker's acknowledgements
    requests_per_second: int = 50  # per key, sustained; a key's own setting wins
    events_per_second: int = 5000
    burst: int = 2  # a key may go this many times its rate within any one second
    redis_url: str | None = None  # shared rate limits across replicas; None: in-process
    page_size: int = 100  # events behind an invoice line, per page (at most 1000)

    @classmethod
    def from_env(cls) -> ApiSettings:
        return cls(
            max_events=env_int("VALUEVERSE_API_MAX_EVENTS", 1000, minimum=1, maximum=100_000),
            max_body_bytes=env_int(
                "VALUEVERSE_API_MAX_BODY_BYTES", 1024 * 1024, minimum=1024, maximum=64 << 20
            ),
            produce_timeout=float(
                env_decimal(
                    "VALUEVERSE_API_PRODUCE_TIMEOUT_SECONDS", "5", Decimal("0.1"), Decimal(120)
                )  # fmt: skip
            ),
            requests_per_second=env_int("VALUEVERSE_API_REQUESTS_PER_SECOND", 50, minimum=1),
            events_per_second=env_int("VALUEVERSE_API_EVENTS_PER_SECOND", 5000, minimum=1),
            burst=env_int("VALUEVERSE_API_BURST", 2, minimum=1, maximum=100),
            redis_url=os.environ.get("VALUEVERSE_REDIS_URL") or None,
        )
