"""Letters leave only through the outbox, after commit: to a real SMTP server or to files."""
from __future__ import annotations

import socket
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from engine.models import OutboxMessage
from engine.outbox import FileTransport, SmtpTransport, deliver_pending
from engine.scenarios import application

from .conftest import START


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


def test_letters_are_delivered_by_smtp_once(service, smtp_server):
    inbox, port = smtp_server
    reference = service.apply(application(START.date()))["reference"]
    sent = deliver_pending(service.sessions, SmtpTransport("127.0.0.1", port), sender="asb@example.org",
                           now=service.now)
    assert sent == len(inbox.messages) == 3
    subjects = {m["Subject"] for _to, m in inbox.messages}
    acknowledgement = next(m for to, m in inbox.messages if to == ["applicant@example.org"])
    assert acknowledgement["X-Case-Reference"] == reference
    assert reference in acknowledgement.get_body(("plain",)).get_content()
    attachment = next(acknowledgement.iter_attachments())  # the letter as a PDF, for the applicant
    assert attachment.get_content_type() == "application/pdf" and attachment.get_content().startswith(b"%PDF")
    assert len(subjects) >= 2
    assert deliver_pending(service.sessions, SmtpTransport("127.0.0.1", port), sender="asb@example.org",
                           now=service.now) == 0


def test_unreachable_server_keeps_messages_for_a_retry(service, tmp_path):
    service.apply(application(START.date()))
    dead = SmtpTransport("127.0.0.1", free_port())
    assert deliver_pending(service.sessions, dead, sender="asb@example.org", now=service.now) == 0
    with service.sessions() as db:
        rows = list(db.scalars(select(OutboxMessage)))
    assert rows and all(r.sent_at is None and r.attempts == 1 and r.last_error and r.retry_at for r in rows)
    later = max(r.retry_at for r in rows)  # retried after a backoff, not at once
    assert deliver_pending(service.sessions, FileTransport(tmp_path / "out"), sender="asb@example.org",
                           now=lambda: later) == len(rows)


def test_rolled_back_command_writes_no_letter(service, monkeypatch, tmp_path):
    import engine.runtime as runtime

    monkeypatch.setattr(runtime.CaseRun, "_save", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk full")))
    with pytest.raises(RuntimeError):
        service.apply(application(START.date()))
    with service.sessions() as db:
        assert db.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    folder = tmp_path / "sent"
    assert deliver_pending(service.sessions, FileTransport(folder), sender="asb@example.org", now=service.now) == 0
    assert not folder.exists()  # and so nothing ever leaves
