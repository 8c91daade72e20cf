"""The rate limits' own Redis client (ingestion/api/resp.py): its reply parser, and against the
local Redis (skipped when none answers): pipelined calls each get their own reply, a script
Redis forgot is sent again, SELECT of the URL's database, and a Redis that cannot be reached
is an error the limiter serves through, as with redis-py before."""

from __future__ import annotations

import asyncio
import socket
import uuid
from datetime import datetime

import pytest
import redis

from ingestion.api.keys import ApiKey
from ingestion.api.ratelimit import RateLimiter
from ingestion.api.resp import _INCOMPLETE, RedisError, ScriptClient, _ReplyError, encode, parse
from ingestion.api.settings import ApiSettings
from ingestion.demo.broker import free_port

REDIS_URL = "redis://127.0.0.1:6379"
ECHO = "return {KEYS[1], tonumber(ARGV[1]) + 1, redis.call('GET', KEYS[1])}"


def test_replies_are_parsed_whole_or_not_at_all() -> None:
    reply = b"*3\r\n:1\r\n$2\r\nab\r\n*2\r\n$-1\r\n+OK\r\n:0\r\n-NOSCRIPT no\r\n"
    value, end = parse(reply, 0)
    assert value == [1, b"ab", [None, "OK"]]
    assert parse(reply, end) == (0, end + 4)
    error, _ = parse(reply, end + 4)
    assert isinstance(error, _ReplyError) and str(error) == "NOSCRIPT no"
    for cut in range(1, 30):  # any prefix of the array is incomplete, never a wrong value
        assert parse(reply[:cut], 0) == (_INCOMPLETE, 0)
    assert encode(b"GET", b"k") == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"


def _redis_answers() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), 1).close()
    except OSError:
        return False
    return True


needs_redis = pytest.mark.skipif(not _redis_answers(), reason="no Redis on 127.0.0.1:6379")


@needs_redis
def test_pipelined_calls_each_get_their_own_reply_and_a_forgotten_script_is_sent_again() -> None:
    key = f"test:resp:{uuid.uuid4().hex}"
    sync = redis.Redis.from_url(REDIS_URL + "/1")
    sync.set(key, "db1", ex=60)
    client = ScriptClient(REDIS_URL + "/1", ECHO)

    async def calls() -> list:
        first = await asyncio.gather(*(client.run([key], [n]) for n in range(200)))
        sync.script_flush()  # as after a restart: EVALSHA answers NOSCRIPT
        again = await client.run([key], [7])
        await client.close()
        return [first, again]

    first, again = asyncio.run(calls())
    assert first == [[key.encode(), n + 1, b"db1"] for n in range(200)]  # read in database 1
    assert again == [key.encode(), 8, b"db1"]


@needs_redis
def test_script_errors_are_raised() -> None:
    client = ScriptClient(REDIS_URL, "return redis.call('NOSUCHCOMMAND')")
    with pytest.raises(RedisError):
        asyncio.run(client.run([], []))


def test_an_unreachable_redis_is_served_through_and_counted() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with pytest.raises(RedisError, match="cannot connect"):
        asyncio.run(ScriptClient(url, ECHO).run(["k"], [1]))
    limiter = RateLimiter(ApiSettings(redis_url=url))
    key = ApiKey("k" * 12, "test", "", frozenset({"events:write"}), None, 1, 1,
                 datetime(2026, 1, 1), None)  # fmt: skip

    async def checks() -> list:
        return [await limiter.check(key, {"requests": 1, "events": 5}) for _ in range(3)]

    assert asyncio.run(checks()) == [None] * 3
    assert limiter.store_failures == 3


@needs_redis
def test_limits_in_redis_refuse_with_the_window_that_refused() -> None:
    limiter = RateLimiter(ApiSettings(redis_url=REDIS_URL + "/0", burst=1))
    key = ApiKey(uuid.uuid4().hex[:12], "test", "", frozenset({"events:write"}), None, 1000, 5,
                 datetime(2026, 1, 1), None)  # fmt: skip

    async def checks() -> list:
        return [await limiter.check(key, {"requests": 1, "events": n}) for n in (6, 5)]

    refused, served = asyncio.run(checks())  # more than a second's 5 events; then 5, which fit
    assert refused is not None and (refused.what, refused.limit, refused.cost) == ("events", 5, 6)
    assert refused.remaining == 5 and refused.reset_seconds >= 1
    assert served is None  # the refused request counted in no window
