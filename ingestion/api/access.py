"""Who may do what, shared by the FastAPI routes and the plain ASGI route of POST /v1/events
(events.py): the problem an answer names, the bearer key, its scope and its rate limits."""

from __future__ import annotations

from typing import Any

from ingestion.api import telemetry
from ingestion.api.keys import ApiKey, KeyVerifier
from ingestion.api.ratelimit import RateLimiter, Verdict

PROBLEM = "application/problem+json"


class Problem(Exception):
    """An answer other than success: status, a short title, what exactly went wrong."""

    def __init__(self, status: int, title: str, detail: str,
                 headers: dict[str, str] | None = None) -> None:  # fmt: skip
        super().__init__(detail)
        self.status, self.title, self.detail, self.headers = status, title, detail, headers or {}


def problem_content(status: int, title: str, detail: str,
                    request_id: str | None) -> dict[str, Any]:  # fmt: skip
    """The problem+json document (RFC 9457) of an answer."""
    content: dict[str, Any] = {"type": "about:blank", "title": title, "status": status,
                               "detail": detail}  # fmt: skip
    if request_id:
        content["request_id"] = request_id
    return content


async def authenticate(keys: KeyVerifier, authorization: str) -> ApiKey:
    """The key of an Authorization header (read from the store, in a thread, only when the
    cache has not got it: KeyVerifier.verify_async)."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "Unauthorized", "send Authorization: Bearer <API key>",
                      {"WWW-Authenticate": "Bearer"})  # fmt: skip
    key = await keys.verify_async(token.strip())
    if key is None:
        raise Problem(401, "Unauthorized", "unknown or revoked API key",
                      {"WWW-Authenticate": 'Bearer error="invalid_token"'})  # fmt: skip
    return key


def require(key: ApiKey, scope: str) -> None:
    if scope not in key.scopes:
        raise Problem(403, "Forbidden", f"this API key lacks the scope {scope}")


async def limit(limiter: RateLimiter, key: ApiKey, costs: dict[str, int]) -> None:
    """Count the request against the key's limits, or refuse it with 429."""
    verdict = await limiter.check(key, costs)
    if verdict is not None:
        telemetry.RATE_LIMITED.labels(verdict.what).inc()
        raise Problem(429, "Too many requests", _limit_detail(verdict), _limit_headers(verdict))


def _limit_detail(verdict: Verdict) -> str:
    unit = "request" if verdict.what == "requests" else f"{verdict.cost} event(s)"
    return (f"this key may send {verdict.limit} {verdict.what} per second; retry the {unit} "
            f"in {verdict.reset_seconds} s")  # fmt: skip


def _limit_headers(verdict: Verdict) -> dict[str, str]:
    return {
        "Retry-After": str(verdict.reset_seconds),
        "RateLimit-Limit": str(verdict.limit),
        "RateLimit-Remaining": str(verdict.remaining),
        "RateLimit-Reset": str(verdict.reset_seconds),
    }
