"""Rate limits per API key: requests and events per second, with bursts (the `limits` library).

Each key has a sustained rate R (its own, else the server's default), enforced over a
10-second sliding window (10 R), and a burst cap of `burst` x R within any one second: a key
may go above R for a few seconds, never far above it. Events count by the number in the
request. With VALUEVERSE_REDIS_URL the counters live in Redis, so every replica shares them;
without it, in the process.

If Redis cannot be reached the request is let through and the failure is logged and counted:
refusing usage because the limiter's store is down would lose billable events, and the broker
behind the API bounds what a flood can do.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond, storage, strategies

from ingestion.api.keys import ApiKey
from ingestion.api.settings import ApiSettings

log = logging.getLogger("valueverse.api")
WINDOW_SECONDS = 10


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int  # per second, the sustained rate of the dimension that decided
    remaining: int
    reset_seconds: int  # until the window that refused has room again
    what: str = "requests"


class RateLimiter:
    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.store = storage.storage_from_string(settings.redis_url or "memory://")
        self.limiter = strategies.SlidingWindowCounterRateLimiter(self.store)
        self.store_failures = 0

    def check(self, key: ApiKey, what: str, cost: int = 1) -> Verdict:
        """Count `cost` requests or events for `key`; the verdict says whether to serve it."""
        rate = (key.requests_per_second or self.settings.requests_per_second
                if what == "requests" else
                key.events_per_second or self.settings.events_per_second)  # fmt: skip
        items = [
            RateLimitItemPerSecond(rate * WINDOW_SECONDS, WINDOW_SECONDS, namespace=what),
            RateLimitItemPerSecond(rate * self.settings.burst, 1, namespace=f"{what}-burst"),
        ]
        try:
            for item in items:
                if not self.limiter.test(item, key.key_id, cost=cost):
                    return self._refused(item, key, rate, what)
            for item in items:
                self.limiter.hit(item, key.key_id, cost=cost)
            stats = self.limiter.get_window_stats(items[0], key.key_id)
        except Exception as exc:  # the shared store is down: serve, and say so (module doc)
            self.store_failures += 1
            log.warning("rate limit store unavailable: %s", type(exc).__name__)
            return Verdict(True, rate, rate, 0, what)
        return Verdict(True, rate, max(0, stats.remaining), _until(stats.reset_time), what)

    def _refused(self, item: RateLimitItem, key: ApiKey, rate: int, what: str) -> Verdict:
        stats = self.limiter.get_window_stats(item, key.key_id)
        return Verdict(False, rate, max(0, stats.remaining), max(1, _until(stats.reset_time)), what)


def _until(reset_time: float) -> int:
    return max(0, math.ceil(reset_time - time.time()))
