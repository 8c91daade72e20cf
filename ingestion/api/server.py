"""`valueverse api serve`: the usage API on uvicorn.

Shutdown is graceful: on SIGTERM or SIGINT uvicorn stops accepting connections, lets the
requests in flight finish (each waits for its acknowledgements), then the app's lifespan
marks the server draining and flushes the producer. Several worker processes share one port
(`--workers`); each has its own producer and key cache, and the rate limits are shared only
through Redis (VALUEVERSE_REDIS_URL).
"""

from __future__ import annotations

import logging

import uvicorn

from ingestion.landing.metrics import configure_json_logging


def app_factory():
    """The app with services from the environment (uvicorn's --factory entry point)."""
    from ingestion.api.app import create_app, default_services
    from ingestion.landing import tracing

    configure_json_logging()
    tracing.configure("valueverse-api")
    return create_app(default_services)


def serve(host: str, port: int, workers: int = 1) -> None:
    configure_json_logging()
    uvicorn.run(
        "ingestion.api.server:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # one JSON line per request comes from the app itself
        log_level=logging.getLevelName(logging.WARNING).lower(),
        timeout_graceful_shutdown=30,
        proxy_headers=False,
    )
