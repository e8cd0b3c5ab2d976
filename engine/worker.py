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


def start_in_background(service: CaseReview, interval: float = 15.0):
    """A daemon thread doing worker passes, so a single-office `casereview serve` needs one process."""
    import logging
    import threading

    log = logging.getLogger("casereview.worker")
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            try:
                run_pass(service)
            except Exception:  # keep serving; the next pass retries
                log.exception("worker pass failed")

    threading.Thread(target=loop, name="casereview-worker", daemon=True).start()
    return stop
