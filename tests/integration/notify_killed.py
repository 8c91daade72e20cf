"""`valueverse` killed by SIGKILL right after a webhook was answered, before the delivery log
heard of it.

Run as `python -m tests.integration.notify_killed webhooks deliver` from the repository root
(the rest are `valueverse`'s arguments). Everything is the real command; only the HTTP POST is
followed by SIGKILL of the process itself once the receiver's answer is back. SIGKILL runs no
cleanup and cannot be caught, like a machine dying at that moment. The switch lives here, in
the tests: production code has no fault-injection path.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import NoReturn
from unittest import mock

from ingestion import cli
from ingestion.notifications import http_post

_real_post = http_post.post


def _post_then_die(*args: object, **kwargs: object) -> NoReturn:
    _real_post(*args, **kwargs)  # type: ignore[arg-type]
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("the process survived SIGKILL")


if __name__ == "__main__":
    with mock.patch.object(http_post, "post", _post_then_die):
        sys.exit(cli.main(sys.argv[1:]))
