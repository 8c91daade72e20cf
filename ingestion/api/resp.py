"""A small Redis client for the one call the rate limits make: their Lua script, by EVALSHA.

Why not redis-py: its asyncio client spent ~280 CPU-µs on each script call (command packing
through several layers, taking and giving back a pooled connection under a lock, its reply
parser), more than a third of a one-event request (measured). Here a server process keeps one
connection to Redis and writes each call on it as it comes, without waiting for the replies
before (pipelining: Redis answers in order, so the n-th reply is the n-th waiting call's). The
replies are parsed by a few lines that know RESP2's five types, all the script can return.

The script is sent whole (EVAL) only when Redis says it does not know it (NOSCRIPT: after a
restart or SCRIPT FLUSH); EVAL also caches it for the next EVALSHA. A call that gets no answer
within `timeout` fails, and the connection is closed (a Redis that hangs should not hold every
request after it); the next call connects again. URLs: redis://[[user]:password@]host[:port][/db],
and rediss:// for TLS.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from typing import Any
from urllib.parse import unquote, urlsplit

from ingestion.warehouse import ConfigError


class RedisError(Exception):
    """Redis could not be reached, did not answer in time, or answered an error."""


class _ReplyError(RedisError):
    """An error reply (`-ERR ...`, `-NOSCRIPT ...`)."""


_INCOMPLETE = object()


def encode(*parts: bytes) -> bytes:
    """A command in RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


def parse(buffer: bytes, position: int) -> tuple[Any, int]:
    """The reply that starts at `position` and where it ends, or (_INCOMPLETE, position) when
    the buffer does not hold all of it yet. Error replies are returned as _ReplyError."""
    line_end = buffer.find(b"\r\n", position)
    if line_end < 0:
        return _INCOMPLETE, position
    kind, line, after = (
        buffer[position : position + 1],
        buffer[position + 1 : line_end],
        line_end + 2,
    )
    if kind == b":":
        return int(line), after
    if kind == b"+":
        return line.decode(), after
    if kind == b"-":
        return _ReplyError(line.decode(errors="replace")), after
    if kind == b"$":
        length = int(line)
        if length < 0:
            return None, after
        if len(buffer) < after + length + 2:
            return _INCOMPLETE, position
        return buffer[after : after + length], after + length + 2
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, after
        items = []
        for _ in range(count):
            item, after = parse(buffer, after)
            if item is _INCOMPLETE:
                return _INCOMPLETE, position
            items.append(item)
        return items, after
    raise RedisError(f"not a RESP reply: {buffer[position : position + 20]!r}")


class _Connection(asyncio.Protocol):
    """One connection: commands go out as written, each reply settles the oldest waiter."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.buffer = b""
        self.closed = False
        self.outgoing: list[bytes] = []  # written together once the loop's current turn ends

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        position = 0
        try:
            while position < len(buffer):
                reply, position = parse(buffer, position)
                if reply is _INCOMPLETE:
                    break
                waiter = self.waiting.popleft()
                if not waiter.done():  # else it timed out already
                    waiter.set_result(reply)
        except (RedisError, ValueError, IndexError) as exc:  # garbage, or a reply nobody asked
            self.fail(RedisError(f"unexpected data from Redis: {exc}"))
            return
        self.buffer = buffer[position:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail_waiting(RedisError(f"connection to Redis lost: {exc or 'closed'}"))

    def send(self, command: bytes) -> asyncio.Future[Any]:
        """Queue `command`; its reply settles the future. The commands of every request that
        runs in one turn of the event loop go out in one write: each write is a system call,
        and on loopback the sender pays for the receiver's TCP work too. The writes were the
        largest item of a one-event request's profile; once a turn, a request took 342-437 ->
        297-381 CPU-µs (bench_api_cpu.py, 8 in flight, loaded machine)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.waiting.append(future)
        if not self.outgoing:
            loop.call_soon(self._flush)
        self.outgoing.append(command)
        return future

    def _flush(self) -> None:
        outgoing, self.outgoing = self.outgoing, []
        if self.transport is not None and not self.closed:
            self.transport.write(b"".join(outgoing))

    def fail(self, error: RedisError) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        self._fail_waiting(error)

    def _fail_waiting(self, error: RedisError) -> None:
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(error)


class ScriptClient:
    """Runs one Lua script on the Redis at `url` (see the module). Only the event loop that
    made its connection may call it (each server process has one)."""

    def __init__(self, url: str, script: str, timeout: float = 1.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ConfigError(f"VALUEVERSE_REDIS_URL must be redis://host[:port][/db] or "
                              f"rediss://..., not {parts.scheme or url!r}")  # fmt: skip
        self.host, self.port = parts.hostname, parts.port or 6379
        self.tls = ssl.create_default_context() if parts.scheme == "rediss" else None
        self.hello: list[bytes] = []  # AUTH and SELECT, sent first on each new connection
        if parts.password is not None:
            auth = [unquote(parts.username or "").encode()] if parts.username else []
            self.hello.append(encode(b"AUTH", *auth, unquote(parts.password).encode()))
        database = parts.path.strip("/")
        if database and database != "0":
            self.hello.append(encode(b"SELECT", database.encode()))
        self.script = script.encode()
        self.sha = hashlib.sha1(self.script, usedforsecurity=False).hexdigest().encode()
        self.timeout = timeout
        self._connection: _Connection | None = None
        self._connecting: asyncio.Future[_Connection] | None = None

    async def run(self, keys: list[str], args: list[int]) -> Any:
        """The script's reply for these KEYS and ARGV; RedisError when there is none."""
        tail = [key.encode() for key in keys] + [b"%d" % arg for arg in args]
        count = b"%d" % len(keys)
        reply = await self._call(encode(b"EVALSHA", self.sha, count, *tail))
        if isinstance(reply, _ReplyError) and str(reply).startswith("NOSCRIPT"):
            reply = await self._call(encode(b"EVAL", self.script, count, *tail))
        if isinstance(reply, _ReplyError):
            raise reply
        return reply

    async def close(self) -> None:
        if self._connection is not None and self._connection.transport is not None:
            self._connection.transport.close()
        self._connection = None

    async def _call(self, command: bytes) -> Any:
        connection = self._connection
        if connection is None or connection.closed:
            connection = await self._connect()
        future = connection.send(command)
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            connection.fail(RedisError("no answer from Redis in time"))
            raise RedisError(f"no answer from Redis within {self.timeout:g} s") from None

    async def _connect(self) -> _Connection:
        """The connection, made once however many calls wait for it."""
        if self._connecting is None:
            loop = asyncio.get_running_loop()
            self._connecting = loop.create_future()
            try:
                connection = await asyncio.wait_for(self._open(), self.timeout)
            except (OSError, TimeoutError, RedisError) as exc:
                error = RedisError(f"cannot connect to Redis at {self.host}:{self.port}: "
                                   f"{type(exc).__name__}")  # fmt: skip
                self._connecting.set_exception(error)
                self._connecting.exception()  # retrieved: the callers waiting got it too
                self._connecting = None
                raise error from None
            self._connection = connection
            self._connecting.set_result(connection)
            self._connecting = None
            return connection
        return await asyncio.shield(self._connecting)

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _transport, connection = await loop.create_connection(
            _Connection, self.host, self.port, ssl=self.tls
        )
        for command in self.hello:
            reply = await connection.send(command)
            if isinstance(reply, _ReplyError):  # AUTH or SELECT (never says the password)
                connection.fail(reply)
                raise reply
        return connection
