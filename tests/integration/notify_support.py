"""A real local webhook receiver (a threaded http.server recording every request) and a real
local SMTP server (aiosmtpd, with authentication) for the notification tests."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from ingestion.demo.notifications import local_receiver

SIGNING_KEY = "test-master-key-0123456789abcdef-0123456789"
SMTP_USER, SMTP_PASSWORD = "mailer@valueverse.test", "smtp-test-password"


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Receiver:
    """Answers `statuses` in order (then 200 for ever) and records each request."""

    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            status = self.statuses.pop(0) if self.statuses else 200
            self.requests.append(Received(headers, body, status))
        return status

    def ids(self, answered: int | None = None) -> list[str]:
        return [r.headers["webhook-id"] for r in self.requests
                if answered is None or r.answered == answered]  # fmt: skip


@contextmanager
def receiver(statuses: list[int] | None = None) -> Iterator[Receiver]:
    state = Receiver(list(statuses or []))
    with local_receiver(state.answer) as url:
        state.url = url
        yield state


@dataclass
class Mailbox:
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    port: int = 0


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (openssl): the test's own CA, trusted through
    VALUEVERSE_SMTP_CA_FILE."""
    cert, key = folder / "smtp.pem", folder / "smtp.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@contextmanager
def smtp_server(tls_files: tuple[Path, Path] | None = None) -> Iterator[Mailbox]:
    """aiosmtpd on a free port; it requires a login and keeps every message. With
    `tls_files` (certificate, key) it requires STARTTLS before the login; without, the login
    goes over plain text (allowed on 127.0.0.1 only, as the sender requires)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    box = Mailbox()

    class Handler:
        async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
            box.messages.append(message_from_bytes(envelope.content, policy=policy.default))
            return "250 OK"

    def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode()
        if ok:
            box.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    with socket.socket() as probe:  # a free port (aiosmtpd checks readiness by connecting)
        probe.bind(("127.0.0.1", 0))
        box.port = probe.getsockname()[1]
    tls: dict[str, object] = {"auth_require_tls": False}
    if tls_files is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls_files)
        tls = {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
    controller = Controller(
        Handler(), hostname="127.0.0.1", port=box.port, authenticator=authenticate,
        auth_required=True, **tls,
    )  # fmt: skip
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def smtp_env(port: int) -> dict[str, str]:
    return {"VALUEVERSE_SMTP_HOST": "127.0.0.1", "VALUEVERSE_SMTP_PORT": str(port),
            "VALUEVERSE_SMTP_USERNAME": SMTP_USER, "VALUEVERSE_SMTP_PASSWORD": SMTP_PASSWORD,
            "VALUEVERSE_SMTP_STARTTLS": "0"}  # fmt: skip
