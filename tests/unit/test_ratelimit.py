"""The usage API's rate limits on counters in the process, on a clock the test sets: the burst
and 10-second windows, a refused request counting nowhere, and the sliding weight of the
window before. (Limits in Redis, shared by two servers: tests/integration/test_api.py.)"""

from __future__ import annotations

import asyncio
from datetime import datetime

from ingestion.api.keys import ApiKey
from ingestion.api.ratelimit import RateLimiter, Verdict
from ingestion.api.settings import ApiSettings


def _key(requests_per_second: int, events_per_second: int) -> ApiKey:
    return ApiKey("k" * 12, "test", "", frozenset({"events:write"}), None,
                  requests_per_second, events_per_second, datetime(2026, 1, 1), None)  # fmt: skip


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _check(limiter: RateLimiter, key: ApiKey, **costs: int) -> Verdict | None:
    return asyncio.run(limiter.check(key, costs))


def test_a_refused_request_counts_in_no_window() -> None:
    limiter = RateLimiter(ApiSettings(burst=1), clock=Clock(1000.0))
    key = _key(requests_per_second=3, events_per_second=5)
    assert _check(limiter, key, requests=1, events=5) is None
    refused = _check(limiter, key, requests=1, events=1)  # the events' burst window is full
    assert refused == Verdict(limit=5, remaining=0, reset_seconds=1, what="events", cost=1)
    # the refused request took none of the requests' 3 a second: two more are served
    assert [_check(limiter, key, requests=1) for _ in range(3)] == [
        None,
        None,
        Verdict(limit=3, remaining=0, reset_seconds=1, what="requests", cost=1),
    ]


def test_the_window_before_weighs_by_what_is_left_of_it() -> None:
    clock = Clock(2000.0)
    limiter = RateLimiter(ApiSettings(burst=1), clock=clock)
    key = _key(requests_per_second=4, events_per_second=1000)
    assert [_check(limiter, key, requests=1) for _ in range(4)] == [None] * 4
    clock.now = 2001.25  # three quarters of the second before still weigh: floor(4 x 0.75) = 3
    assert _check(limiter, key, requests=1) is None
    refused = _check(limiter, key, requests=1)
    assert refused is not None and refused.reset_seconds == 1 and refused.remaining == 0
    clock.now = 2002.75  # the second before held 1 request: floor(1 x 0.25) = 0
    assert [_check(limiter, key, requests=1) for _ in range(5)][-1] is not None


def test_the_ten_second_window_holds_bursts_to_ten_times_the_rate() -> None:
    limiter = RateLimiter(ApiSettings(burst=20), clock=Clock(3000.0))
    key = _key(requests_per_second=5, events_per_second=1000)
    answers = [_check(limiter, key, requests=1) for _ in range(60)]  # one second's burst
    assert sum(answer is None for answer in answers) == 50  # 10 s x 5 a second
    assert answers[50] == Verdict(limit=5, remaining=0, reset_seconds=10, what="requests", cost=1)
