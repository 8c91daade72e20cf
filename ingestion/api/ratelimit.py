"""Rate limits per API key: requests and events per second, with bursts.

Each key has a sustained rate R per dimension (its own, else the server's default), enforced
over a 10-second sliding window (10 R), and a burst cap of `burst` x R within any one second:
a key may go above R for a few seconds, never far above it. Events count by the number in
the request. With VALUEVERSE_REDIS_URL the counters live in Redis, so every replica shares
them; without it, in the process.

A sliding window is approximated the usual way (as the `limits` library and Cloudflare do):
the count of the window that started at the last multiple of its length, plus the count of
the window before it weighted by the share of it still inside the sliding window.

Why one script for every window of a request: a POST of events is counted on both
dimensions, each on two windows. Taken one window at a time (the `limits` library's way)
that was four round trips to Redis, about 0.36 of the 0.94 CPU-ms a one-event request cost
(measured). Here all of a request's windows are checked and taken by one Lua script, in one
round trip and atomically: either every window takes the request, or none does and the
first that refused is named (with what the Retry-After and RateLimit-* headers need). The
script reads Redis's clock, so replicas agree on the windows whatever their own clocks say,
and makes the counters' keys from the prefixes it is given (one Redis, not a cluster).

The client is asynchronous, and our own (resp.py): the checks run on the server's event loop,
where a blocking call would stop every other request for the round trip, and handing each
check to a thread cost more CPU than the rest of a one-event request (measured); redis-py's
asyncio client still cost ~280 CPU-µs a call, where resp.py's one pipelined connection costs a
fraction of that.

If Redis cannot be reached the request is let through and the failure is logged and counted:
refusing usage because the limiter's store is down would lose billable events, and the broker
behind the API bounds what a flood can do.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from ingestion.api.keys import ApiKey
from ingestion.api.resp import ScriptClient
from ingestion.api.settings import ApiSettings

log = logging.getLogger("valueverse.api")
WINDOW_SECONDS = 10

# KEYS: one counter prefix per window (its window number is appended).
# ARGV: per window, its cost, limit and length in seconds.
# Returns 0 when every window took its cost, else {window (1-based), remaining, reset seconds}.
_TAKE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local numbers = {}
for i, prefix in ipairs(KEYS) do
  local cost, limit, length = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  local number = math.floor(now / length)
  local into = (now - number * length) / length
  local previous = tonumber(redis.call('GET', prefix .. ':' .. (number - 1))) or 0
  local current = tonumber(redis.call('GET', prefix .. ':' .. number)) or 0
  local weighted = math.floor(previous * (1 - into)) + current
  if weighted + cost > limit then
    return {i, math.max(0, limit - weighted), math.ceil((1 - into) * length)}
  end
  numbers[i] = number
end
for i, prefix in ipairs(KEYS) do
  local key = prefix .. ':' .. numbers[i]
  redis.call('INCRBY', key, tonumber(ARGV[3*i-2]))
  redis.call('EXPIRE', key, 2 * tonumber(ARGV[3*i]))
end
return 0
"""


@dataclass(frozen=True)
class Verdict:
    """Why a request was refused: the key's rate and the window that refused."""

    limit: int  # per second, the sustained rate of the dimension
    remaining: int  # what the refusing window had left
    reset_seconds: int  # until that window starts over (room comes back gradually before)
    what: str  # "requests" or "events"
    cost: int  # what the request would have counted in that dimension


class _Window(NamedTuple):
    prefix: str
    cost: int
    limit: int
    seconds: int
    rate: int  # per second, of its dimension
    what: str


class RateLimiter:
    def __init__(self, settings: ApiSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock  # of the counters in the process (Redis's are on Redis's clock)
        self._take = ScriptClient(settings.redis_url, _TAKE) if settings.redis_url else None
        self._counts: dict[str, tuple[int, int, int]] = {}  # in process: prefix -> windows
        self.store_failures = 0

    async def check(self, key: ApiKey, costs: dict[str, int]) -> Verdict | None:
        """Count each dimension's cost (`{"requests": 1, "events": n}`) for `key`: None to
        serve the request, else why not (and nothing was counted)."""
        windows = []
        for what, cost in costs.items():
            rate = (key.requests_per_second or self.settings.requests_per_second
                    if what == "requests" else
                    key.events_per_second or self.settings.events_per_second)  # fmt: skip
            prefix = f"valueverse:ratelimit:{key.key_id}:{what}"
            windows += [_Window(f"{prefix}:burst", cost, rate * self.settings.burst, 1, rate, what),
                        _Window(prefix, cost, rate * WINDOW_SECONDS, WINDOW_SECONDS, rate,
                                what)]  # fmt: skip
        if self._take is None:
            refused = self._take_in_process(windows, self.clock())
        else:
            try:
                refused = await self._take.run(
                    [w.prefix for w in windows],
                    [n for w in windows for n in (w.cost, w.limit, w.seconds)],
                )
            except Exception as exc:  # the shared store is down: serve, and say so (module doc)
                self.store_failures += 1
                log.warning("rate limit store unavailable: %s", type(exc).__name__)
                return None
        if not refused:
            return None
        index, remaining, reset = refused
        window = windows[index - 1]
        return Verdict(window.rate, int(remaining), max(1, int(reset)), window.what, window.cost)

    def _take_in_process(self, windows: list[_Window], now: float) -> list[int] | None:
        """The script's work on counters in this process (the event loop is its only caller)."""
        counts = []
        for i, window in enumerate(windows, start=1):
            number = math.floor(now / window.seconds)
            into = (now - number * window.seconds) / window.seconds
            previous, current = self._window_counts(window.prefix, number)
            weighted = math.floor(previous * (1 - into)) + current
            if weighted + window.cost > window.limit:
                return [i, max(0, window.limit - weighted),
                        math.ceil((1 - into) * window.seconds)]  # fmt: skip
            counts.append((number, current, previous))
        for window, (number, current, previous) in zip(windows, counts, strict=True):
            self._counts[window.prefix] = (number, current + window.cost, previous)
        return None

    def _window_counts(self, prefix: str, number: int) -> tuple[int, int]:
        """(previous, current) counts of a prefix's windows when window `number` is current."""
        kept = self._counts.get(prefix)
        if kept is None or kept[0] < number - 1:
            return 0, 0
        if kept[0] == number - 1:
            return kept[1], 0
        return kept[2], kept[1]
