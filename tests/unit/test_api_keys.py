"""The usage API's key checks on the event loop: a key the cache lacks is read from the store
once for all the requests that need it meanwhile, and each request still gets its own answer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ingestion.api import keys
from ingestion.api.access import Problem, authenticate
from ingestion.api.keys import KeyVerifier, create_key
from ingestion.warehouse import resolve


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str, list[str]]:
    """A warehouse with one key, its token, and the key store's opens as they happen."""
    config = resolve(f"duckdb:///{tmp_path}/warehouse.duckdb")
    _key_id, token = create_key(config, "w", ["events:write"])
    opened: list[str] = []
    real = keys.connect

    def counted(*args: Any, **kwargs: Any) -> Any:
        opened.append("open")
        return real(*args, **kwargs)

    monkeypatch.setattr(keys, "connect", counted)
    return config, token, opened


def test_requests_that_need_an_uncached_key_share_one_read(store: Any) -> None:
    """Before, each of them opened the store (a DuckDB instance, ~20 CPU-ms, per request)."""
    config, token, opened = store
    verifier = KeyVerifier(config)

    async def requests() -> list[Any]:
        return await asyncio.gather(*(authenticate(verifier, f"Bearer {token}")
                                      for _ in range(20)))  # fmt: skip

    found = asyncio.run(requests())
    assert len(opened) == 1
    assert {key.name for key in found} == {"w"}
    asyncio.run(requests())  # within the cache's life: no read at all
    assert len(opened) == 1


def test_a_wrong_secret_waiting_on_the_same_read_is_refused(store: Any) -> None:
    config, token, opened = store
    verifier = KeyVerifier(config)
    forged = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")

    async def requests() -> list[Any]:
        return await asyncio.gather(authenticate(verifier, f"Bearer {token}"),
                                    authenticate(verifier, f"Bearer {forged}"),
                                    return_exceptions=True)  # fmt: skip

    good, bad = asyncio.run(requests())
    assert good.name == "w"
    assert isinstance(bad, Problem) and bad.status == 401
    assert len(opened) == 1


def test_an_expired_entry_is_read_again(store: Any) -> None:
    """The cache's short life stays what makes a revocation reach every replica."""
    config, token, opened = store
    verifier = KeyVerifier(config, ttl=0.0)

    async def one_after_another() -> None:
        for _ in range(3):
            await authenticate(verifier, f"Bearer {token}")

    asyncio.run(one_after_another())
    assert len(opened) == 3
