"""Delivery of letters and emails written to the outbox table, after the command committed.

Messages are written in the command's transaction, so a rolled-back command never sends
anything. Delivery takes three short transactions per message:

1. **claim**: the worker takes the next due message with a lease (`claim_token`,
   `claimed_until`) and commits, so no other worker takes it while the lease runs;
2. **send** (no transaction open): through the transport, with the message's idempotency key;
3. **mark**: `sent_at` is set only where the claim token still matches.

A worker that dies between 2 and 3 leaves the message claimed; when the lease runs out another
pass sends it again *with the same key*, and each transport makes that repeat harmless as far
as it can (see docs/architecture.md, "Letters, PDFs and delivery"). A failed attempt waits
(`retry_at`, growing backoff); after MAX_ATTEMPTS, or a failure retrying cannot fix, the message
is marked failed (`failed_at`, `last_error`), which the case page shows to staff.
"""
from __future__ import annotations

import io
import logging
import os
import smtplib
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Callable, Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from .db import is_postgres
from .letter_documents import PERSONAL_ROLES, ensure_letter_pdf
from .models import Case, OutboxMessage

log = logging.getLogger("casereview.outbox")

MAX_ATTEMPTS = 5
LEASE = timedelta(minutes=5)  # far longer than a send can take (SMTP and Notify time out at 30 s)
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2))


class PermanentFailure(Exception):
    """A transport's refusal that retrying cannot fix (an address the provider rejects)."""


@dataclass(frozen=True)
class Outgoing:
    """One message as a transport sees it, read when it was claimed."""

    id: int
    key: str  # the idempotency key: the same on every attempt
    attempt: int  # 1 for the first try
    sender: str
    recipient: str  # an email address, or "post:<address>"
    recipient_role: str
    template: str
    subject: str
    body: str
    case_reference: str | None
    created_at: datetime
    pdf: bytes | None = None

    @property
    def by_post(self) -> bool:
        return self.recipient.startswith("post:")

    @property
    def needs_pdf(self) -> bool:
        return self.recipient_role in PERSONAL_ROLES

    @property
    def pdf_filename(self) -> str:
        return f"{self.case_reference or 'letter'}-{self.template}.pdf".replace("_", "-")


class Transport(Protocol):
    def send(self, message: Outgoing) -> None: ...


def delivery_key(row: OutboxMessage) -> str:
    """Stable for the message, unlikely to repeat across databases (the id alone would)."""
    return f"outbox-{row.id}-{row.created_at:%Y%m%d%H%M%S}"


def build_email(message: Outgoing) -> EmailMessage:
    email = EmailMessage()
    email["From"] = message.sender
    # Letters by post go to the office's own mailbox, to be printed (with the PDF) and posted.
    email["To"] = message.sender if message.by_post else message.recipient
    email["Subject"] = message.subject
    email["Message-ID"] = f"<{message.key}@{message.sender.rpartition('@')[2] or 'casereview'}>"
    email["Date"] = format_datetime(message.created_at)  # the same on every attempt
    if message.case_reference:
        email["X-Case-Reference"] = message.case_reference
    if message.by_post:
        email["X-Deliver-By"] = message.recipient
    email.set_content(message.body)
    if message.pdf is not None:
        email.add_attachment(message.pdf, maintype="application", subtype="pdf", filename=message.pdf_filename)
    return email


class FileTransport:
    """Development transport: one .eml file per message, named by its idempotency key, so a
    repeated attempt replaces the file instead of adding one."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def path_for(self, message: Outgoing) -> Path:
        return self.folder / f"{message.key}.eml"

    def send(self, message: Outgoing) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.path_for(message)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_bytes(bytes(build_email(message)))
        os.replace(partial, target)  # atomic: a reader never sees half a message


class SmtpTransport:
    """At least once: a repeat after a crash carries the same Message-ID, which mail clients
    use to recognise (and most to hide) the duplicate."""

    def __init__(self, host: str, port: int = 25):
        self.host, self.port = host, port

    def send(self, message: Outgoing) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=30) as smtp:
                smtp.send_message(build_email(message))
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentFailure(f"the mail server refused the address: {exc.recipients}") from exc


class NotifyTransport:
    """GOV.UK Notify: emails through one template with ((subject)) and ((body)); letters to
    people without an email address posted as precompiled PDF letters. Notify does not
    deduplicate, so a repeated attempt first asks Notify for a notification with the message's
    `reference` and sends only if there is none."""

    DEFAULT_URL = "https://api.notifications.service.gov.uk"

    def __init__(self, api_key: str, template_id: str, base_url: str | None = None):
        from notifications_python_client.notifications import NotificationsAPIClient

        self.client = NotificationsAPIClient(api_key, base_url=base_url or self.DEFAULT_URL)
        self.template_id = template_id

    def already_sent(self, key: str) -> bool:
        found = self.client.get_all_notifications(reference=key)
        return bool((found or {}).get("notifications"))

    def send(self, message: Outgoing) -> None:
        from notifications_python_client.errors import HTTPError

        try:
            if message.attempt > 1 and self.already_sent(message.key):
                return
            if message.by_post:
                if message.pdf is None:
                    raise PermanentFailure("a letter by post needs its PDF")
                self.client.send_precompiled_letter_notification(reference=message.key,
                                                                 pdf_file=io.BytesIO(message.pdf))
            else:
                self.client.send_email_notification(
                    email_address=message.recipient, template_id=self.template_id,
                    personalisation={"subject": message.subject, "body": message.body}, reference=message.key)
        except HTTPError as exc:
            if exc.status_code == 400:  # validation: a bad address or PDF will not get better
                raise PermanentFailure(f"GOV.UK Notify refused it: {exc.message}") from exc
            raise


# ----- the delivery pass --------------------------------------------------------------------
def _due(at: datetime):
    return (OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None),
            or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until <= at),
            or_(OutboxMessage.retry_at.is_(None), OutboxMessage.retry_at <= at))


def _claim_next(sessions: sessionmaker[Session], sender: str, at: datetime,
                lease: timedelta) -> tuple[Outgoing, str] | None:
    with sessions.begin() as db:
        while True:
            query = select(OutboxMessage).where(*_due(at)).order_by(OutboxMessage.id).limit(1)
            if is_postgres(db):  # SQLite: BEGIN IMMEDIATE already serialises claims
                query = query.with_for_update(skip_locked=True)
            row = db.scalar(query)
            if row is None:
                return None
            if row.attempts < MAX_ATTEMPTS:
                break
            # Every earlier attempt ended with its worker gone mid-send: stop trying.
            row.failed_at, row.claim_token, row.claimed_until = at, None, None
            row.last_error = row.last_error or f"gave up: {row.attempts} attempts never finished"
        token = uuid.uuid4().hex
        row.attempts += 1
        row.claim_token, row.claimed_until, row.retry_at = token, at + lease, None
        reference = db.scalar(select(Case.reference).where(Case.id == row.case_id)) if row.case_id else None
        return Outgoing(id=row.id, key=delivery_key(row), attempt=row.attempts, sender=sender,
                        recipient=row.recipient, recipient_role=row.recipient_role, template=row.template,
                        subject=row.subject, body=row.body, case_reference=reference,
                        created_at=row.created_at), token


def _finish(sessions: sessionmaker[Session], message_id: int, token: str, **values) -> bool:
    """Update the message only if this worker's claim still holds it."""
    with sessions.begin() as db:
        done = db.execute(update(OutboxMessage)
                          .where(OutboxMessage.id == message_id, OutboxMessage.claim_token == token)
                          .values(claim_token=None, claimed_until=None, **values))
        return done.rowcount == 1


def _mark_sent(sessions: sessionmaker[Session], message: Outgoing, token: str, at: datetime) -> bool:
    if _finish(sessions, message.id, token, sent_at=at, last_error=None, retry_at=None):
        return True
    log.warning("outbox message %s was sent after its lease ran out; another attempt may repeat it "
                "with the same key %s", message.id, message.key)
    return False


def _mark_failed_attempt(sessions: sessionmaker[Session], message: Outgoing, token: str, error: Exception,
                         at: datetime) -> None:
    text = f"{type(error).__name__}: {error}"[:2000]
    if isinstance(error, PermanentFailure) or message.attempt >= MAX_ATTEMPTS:
        _finish(sessions, message.id, token, last_error=text, failed_at=at)
        log.error("outbox message %s failed for good: %s", message.id, text)
    else:
        wait = BACKOFF[min(message.attempt, len(BACKOFF)) - 1]
        _finish(sessions, message.id, token, last_error=text, retry_at=at + wait)
        log.warning("outbox message %s failed (attempt %s), retrying in %s: %s", message.id, message.attempt,
                    wait, text)


def deliver_pending(sessions: sessionmaker[Session], transport: Transport, *, sender: str,
                    now: Callable[[], datetime], limit: int = 100, lease: timedelta = LEASE,
                    service: dict | None = None) -> int:
    """Send due messages, each claimed, sent and marked on its own; returns how many were sent."""
    sent = 0
    for _ in range(limit):
        claimed = _claim_next(sessions, sender, now(), lease)
        if claimed is None:
            break
        message, token = claimed
        try:
            if message.needs_pdf:  # made (once, then stored) before sending, outside any transaction
                message = replace(message, pdf=ensure_letter_pdf(sessions, message.id, now=now(), service=service))
            transport.send(message)
        except Exception as exc:  # any failure of this message; the pass goes on with the next
            _mark_failed_attempt(sessions, message, token, exc, now())
            continue
        if _mark_sent(sessions, message, token, now()):
            sent += 1
    return sent
