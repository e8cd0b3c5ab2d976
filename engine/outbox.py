"""Delivery of letters and emails written to the outbox table.

Messages are written in the command's transaction and delivered here, after commit, so a
rolled-back change never sends anything. Each message has a stable Message-ID and file name,
so a retry after a crash between sending and marking it sent overwrites instead of doubling.
"""
from __future__ import annotations

import smtplib
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Callable, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from .db import is_postgres
from .models import Case, OutboxMessage

MAX_ATTEMPTS = 5


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...


def build_email(row: OutboxMessage, sender: str, reference: str | None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = row.recipient if "@" in row.recipient else sender
    message["Subject"] = row.subject
    message["Message-ID"] = f"<outbox-{row.id}@casereview>"
    if reference:
        message["X-Case-Reference"] = reference
    if "@" not in row.recipient:
        message["X-Deliver-By"] = row.recipient  # e.g. post:<address>
    message.set_content(row.body)
    return message


class FileTransport:
    """Development transport: one .eml file per message in a folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def send(self, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = message["Message-ID"].strip("<>").split("@")[0] + ".eml"
        (self.folder / name).write_bytes(bytes(message))


class SmtpTransport:
    def __init__(self, host: str, port: int = 25):
        self.host, self.port = host, port

    def send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=30) as smtp:
            smtp.send_message(message)


def deliver_pending(sessions: sessionmaker[Session], transport: Transport, *, sender: str,
                    now: Callable[[], datetime], limit: int = 100) -> int:
    """Send unsent messages, one transaction each; returns how many were sent."""
    sent, failed = 0, set()
    for _ in range(limit):
        with sessions.begin() as db:
            query = (select(OutboxMessage).where(OutboxMessage.sent_at.is_(None),
                                                 OutboxMessage.attempts < MAX_ATTEMPTS)
                     .order_by(OutboxMessage.id).limit(1))
            if failed:  # a failure waits for the next pass instead of being retried at once
                query = query.where(OutboxMessage.id.not_in(failed))
            if is_postgres(db):
                query = query.with_for_update(skip_locked=True)
            row = db.scalar(query)
            if row is None:
                break
            reference = db.scalar(select(Case.reference).where(Case.id == row.case_id)) if row.case_id else None
            row.attempts += 1
            try:
                transport.send(build_email(row, sender, reference))
            except (OSError, smtplib.SMTPException) as exc:
                row.last_error = f"{type(exc).__name__}: {exc}"
                failed.add(row.id)
                continue
            row.sent_at = now()
            row.last_error = None
            sent += 1
    return sent
