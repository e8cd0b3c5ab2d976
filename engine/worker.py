"""One pass of the background worker: fire due timers, deliver the outbox, delete expired application drafts."""
from __future__ import annotations

from . import application_drafts
from .errors import CaseReviewError
from .outbox import FileTransport, NotifyTransport, SmtpTransport, Transport, deliver_pending
from .service import CaseReview


def transport_for(service: CaseReview) -> Transport:
    """GOV.UK Notify when its key is set, else SMTP when a host is set, else files."""
    settings = service.settings
    if settings.notify_api_key:
        if not settings.notify_template_id:
            raise CaseReviewError("CASEREVIEW_NOTIFY_API_KEY needs CASEREVIEW_NOTIFY_TEMPLATE_ID: the id of an "
                                  "email template whose subject is ((subject)) and whose body is ((body))")
        return NotifyTransport(settings.notify_api_key, settings.notify_template_id, settings.notify_base_url)
    if settings.smtp_host:
        return SmtpTransport(settings.smtp_host, settings.smtp_port)
    return FileTransport(settings.outbox_dir)


def run_pass(service: CaseReview, transport: Transport | None = None) -> dict:
    fired = service.fire_due_timers()
    sent = deliver_pending(service.sessions, transport or transport_for(service),
                           sender=service.settings.mail_from, now=service.now, service=service.settings.service)
    with service.transaction() as db:  # unfinished applications left for a day
        drafts = application_drafts.delete_expired(db, service.now())
    return {"fired": fired, "sent": sent, "drafts_deleted": drafts}


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
