"""One webhook request: POST the payload bytes, never follow a redirect, read at most a little
of the answer. Standard library only (httpx is not a dependency of the project)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass

RESPONSE_READ_BYTES = 65_536  # the answer is read (so the connection closes cleanly), not kept
USER_AGENT = "ValueVerse-Webhooks/1"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    latency_ms: int
    error: str | None
    permanent: bool = False  # retrying cannot help (an oversized payload): give up at once


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not an instruction: following it would send the signed body
    somewhere nobody configured (and urllib would turn the POST into a bodiless GET)."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Outcome:
    """2xx is delivered; any other status, a timeout or a refused connection is a failure."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={**headers, "content-type": "application/json", "user-agent": USER_AGENT},
    )
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        # the URL's scheme was checked when the endpoint was added (http or https only)
        with _OPENER.open(request, timeout=timeout) as response:  # nosec B310
            status = response.status
            response.read(RESPONSE_READ_BYTES)
    except urllib.error.HTTPError as exc:
        status = exc.code
        error = f"HTTP {exc.code} {exc.reason}"
        exc.close()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        error = f"{type(exc).__name__}: {reason}"
    latency = int((time.monotonic() - started) * 1000)
    ok = status is not None and 200 <= status < 300
    return Outcome(ok, status, latency, None if ok else (error or f"HTTP {status}")[:500])
