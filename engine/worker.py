"""One pass of the background worker: fire due timers, then deliver the outbox."""
from __future__ import annotations

from .outbox import FileTransport, SmtpTransport, Transport, deliver_pending
from .service import CaseReview


def transport_for(service: CaseReview) -> Transport:
    settings = service.settings
    if settings.smtp_host:
        return SmtpTransport(settings.smtp_host, settings.smtp_port)
    return FileTransport(settings.outbox_dir)


def run_pass(service: CaseReview, transport: Transport | None = None) -> dict:
    fired = service.fire_due_timers()
    sent = deliver_pending(service.sessions, transport or transport_for(service),
                           sender=service.settings.mail_from, now=service.now)
    return {"fired": fired, "sent": sent}
