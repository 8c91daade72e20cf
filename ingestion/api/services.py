"""What the usage API's routes use, made once per server process (app.py makes it at start-up;
the FastAPI routes and the plain ASGI route of POST /v1/events, events.py, both read it)."""

from __future__ import annotations

from dataclasses import dataclass

from ingestion.api.delivery import AckedProducer
from ingestion.api.keys import KeyVerifier
from ingestion.api.ratelimit import RateLimiter
from ingestion.api.rejects import RejectWriter
from ingestion.api.settings import ApiSettings
from ingestion.warehouse import WarehouseConfig


@dataclass
class Services:
    """What the routes use, made once per server process."""

    settings: ApiSettings
    warehouse: WarehouseConfig
    keys: KeyVerifier
    limiter: RateLimiter
    producer: AckedProducer
    rejects: RejectWriter
    topic: str
    dlq_topic: str
    webhook_secret: str
    draining: bool = False
