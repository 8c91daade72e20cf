"""Rate limits per API key: requests and events per second, with bursts (the `limits` library).

Each key has a sustained rate R (its own, else the server's default), enforced over a
10-second sliding window (10 R), and a burst cap of `burst` x R within any one second: a key
may go above R for a few seconds, never far above it. Events count by the number in the
request. With VALUEVERSE_REDIS_URL the counters live in Redis, so every replica shares them;
without it, in the process.

Why a request costs the store one round trip per window and no more: each window is taken
with the library's atomic check-and-take (`hit`, which takes nothing when it refuses), the
one-second burst window first. Only a refusal reads the window again, for the Retry-After and
RateLimit-* headers. When the burst window allowed and the 10-second one refused, the refused
request stays counted in the burst window for the rest of that second; the key is over its
10-second budget then, so it is refused in any case until that window has room.

Why the async client: the checks run on the server's event loop, where a blocking call would
stop every other request for the round trip, and handing each check to a thread cost more
CPU than the rest of a one-event request (measured).

If Redis cannot be reached the request is let through and the failure is logged and counted:
refusing usage because the limiter's store is down would lose billable events, and the broker
behind the API bounds what a flood can do.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond, storage
from limits.aio import strategies

from ingestion.api.keys import ApiKey
from ingestion.api.settings import ApiSettings

log = logging.getLogger("valueverse.api")
WINDOW_SECONDS = 10


@dataclass(frozen=True)
class Verdict:
    """Why a request was refused: the key's rate and the window that refused."""

    limit: int  # per second, the sustained rate of the dimension
    remaining: int
    reset_seconds: int  # until the window that refused has room again
    what: str = "requests"


class RateLimiter:
    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        url = settings.redis_url
        self.store = (storage.storage_from_string(f"async+{url}", implementation="redispy")
                      if url else storage.storage_from_string("async+memory://"))  # fmt: skip
        self.limiter = strategies.SlidingWindowCounterRateLimiter(self.store)
        self.store_failures = 0

    async def check(self, key: ApiKey, what: str, cost: int = 1) -> Verdict | None:
        """Count `cost` requests or events for `key`: None to serve it, else why not."""
        rate = (key.requests_per_second or self.settings.requests_per_second
                if what == "requests" else
                key.events_per_second or self.settings.events_per_second)  # fmt: skip
        items = [
            RateLimitItemPerSecond(rate * self.settings.burst, 1, namespace=f"{what}-burst"),
            RateLimitItemPerSecond(rate * WINDOW_SECONDS, WINDOW_SECONDS, namespace=what),
        ]
        try:
            for item in items:
                if not await self.limiter.hit(item, key.key_id, cost=cost):
                    return await self._refused(item, key, rate, what)
        except Exception as exc:  # the shared store is down: serve, and say so (module doc)
            self.store_failures += 1
            log.warning("rate limit store unavailable: %s", type(exc).__name__)
        return None

    async def _refused(self, item: RateLimitItem, key: ApiKey, rate: int, what: str) -> Verdict:
        stats = await self.limiter.get_window_stats(item, key.key_id)
        return Verdict(rate, max(0, stats.remaining), max(1, _until(stats.reset_time)), what)


def _until(reset_time: float) -> int:
    return max(0, math.ceil(reset_time - time.time()))
