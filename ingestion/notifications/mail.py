"""Notifications by email: a plain-text and an HTML body (templates.py, string.Template; every
value HTML-escaped in the HTML part), sent through the SMTP server of the environment
(settings.SmtpSettings) with STARTTLS or implicit TLS.

The Message-ID is derived from the notification id, so a resend after a crash is recognisably
the same message; a password is never sent over an unencrypted connection except to a server
on this machine (a local relay, or the tests' aiosmtpd).
"""

from __future__ import annotations

import html
import json
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

from ingestion.notifications.settings import SmtpSettings
from ingestion.notifications.templates import HTML, TEXT

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
MAX_FIELDS = 50  # a payload's data fields listed in the body


def render(notification: dict[str, Any]) -> tuple[str, str, str]:
    """Subject, text and HTML of one notification (`notification`: the outbox row's fields
    plus `data`, the payload's data)."""
    data = notification.get("data") or {}
    items = [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in data.items()]
    items = items[:MAX_FIELDS]
    fields = {
        "event_type": notification["event_type"],
        "subject": notification.get("subject") or "-",
        "customer": notification.get("customer_id") or "-",
        "recorded_at": notification["recorded_at"],
        "notification_id": notification["notification_id"],
    }
    text = TEXT.substitute(fields, details="\n".join(f"{k}: {v}" for k, v in items))
    rows = "\n".join(
        f'<tr><th align="left">{html.escape(k)}</th><td>{html.escape(v)}</td></tr>'
        for k, v in items
    )
    page = HTML.substitute({k: html.escape(str(v)) for k, v in fields.items()}, details=rows)
    title = f"[ValueVerse] {fields['event_type']} {fields['subject']}"
    return title, text, page


def message(sender: str, to: str, ident: str, subject: str, text: str, page: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{ident}@valueverse>"
    msg["X-ValueVerse-Notification-Id"] = ident
    msg.set_content(text)
    msg.add_alternative(page, subtype="html")
    return msg


def send(settings: SmtpSettings, msg: EmailMessage, timeout: float) -> None:
    """Send one message; smtplib's and the socket's errors propagate (the caller logs them)."""
    context = ssl.create_default_context(cafile=settings.ca_file)  # verifies host and chain
    client: smtplib.SMTP
    if settings.tls:
        client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=timeout)
    with client:
        if settings.starttls:
            client.starttls(context=context)
        if settings.username:
            if not (settings.tls or settings.starttls) and settings.host not in LOCAL_HOSTS:
                raise smtplib.SMTPException(
                    "refusing to send the SMTP password unencrypted: set VALUEVERSE_SMTP_STARTTLS=1"
                    " or VALUEVERSE_SMTP_TLS=1"
                )
            client.login(settings.username, settings.password)
        client.send_message(msg)
