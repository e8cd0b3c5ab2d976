"""Outbox delivery: GOV.UK Notify against a local fake server, exactly-once through a worker
crash between sending and marking, backoff and giving up, and leases between two workers."""
from __future__ import annotations

import base64
import io
import json
import threading
import uuid
from dataclasses import replace
from datetime import timedelta
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from aiosmtpd.controller import Controller
from pypdf import PdfReader
from sqlalchemy import select

from engine.errors import CaseReviewError
from engine.models import OutboxMessage
from engine.outbox import (LEASE, MAX_ATTEMPTS, FileTransport, NotifyTransport, SmtpTransport, delivery_key,
                           deliver_pending)
from engine.scenarios import application
from engine.worker import run_pass, transport_for

from .conftest import START
from .test_outbox import free_port
from .web_helpers import make_app, sign_in, text_of

SENDER = "asb@council.example"
SERVICE_ID, SECRET = str(uuid.uuid4()), str(uuid.uuid4())
API_KEY = f"casereview_test-{SERVICE_ID}-{SECRET}"
TEMPLATE_ID = str(uuid.uuid4())


@pytest.fixture
def database_url(tmp_path):
    """SQLite: sending, crashing and retrying do not differ by database; the leases between two
    workers, which do, are tested on both (the last test)."""
    return f"sqlite:///{tmp_path / 'casereview.sqlite3'}"


def at(minutes: float):
    moment = START + timedelta(minutes=minutes)
    return lambda: moment


class WorkerKilled(BaseException):
    """Stands for the process dying: nothing in the delivery pass may catch it."""


class DiesAfterSending:
    """Sends through the real transport, then 'dies' before the message can be marked sent."""

    def __init__(self, transport, times: int = 1):
        self.transport, self.times = transport, times

    def send(self, message):
        self.transport.send(message)
        if self.times:
            self.times -= 1
            raise WorkerKilled(message.id)


class Recording:
    def __init__(self, fail_with: Exception | None = None):
        self.sent, self.fail_with = [], fail_with

    def send(self, message):
        if self.fail_with:
            raise self.fail_with
        self.sent.append(message.id)


def rows(service) -> list[OutboxMessage]:
    with service.sessions() as db:
        return list(db.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def queue_agency_emails(service, count: int) -> list[int]:
    """Emails to an agency (no PDF to make), written as a command would."""
    with service.transaction() as db:
        made = [OutboxMessage(template="history_request", recipient=f"officer{n}@police.example",
                              recipient_role="agency:police", subject=f"Message {n}", body="Please reply.",
                              created_at=START, attempts=0) for n in range(count)]
        db.add_all(made)
        db.flush()
        return [m.id for m in made]


# ----- GOV.UK Notify ------------------------------------------------------------------------
class FakeNotify:
    """Just enough of the Notify API: records every request and answers like Notify."""

    def __init__(self):
        self.requests, self.notifications, self.status = [], [], 201
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status, payload):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(("POST", self.path, dict(self.headers), data))
                if fake.status != 201:
                    return self._answer(fake.status, {"status_code": fake.status, "errors": [
                        {"error": "BadRequestError", "message": "email_address Not a valid email address"}]})
                notification = {"id": str(uuid.uuid4()), "reference": data.get("reference")}
                fake.notifications.append(notification)
                self._answer(201, notification)

            def do_GET(self):
                url = urlsplit(self.path)
                fake.requests.append(("GET", url.path, dict(self.headers), parse_qs(url.query)))
                wanted = parse_qs(url.query).get("reference", [None])[0]
                self._answer(200, {"notifications": [n for n in fake.notifications if n["reference"] == wanted],
                                   "links": {}})

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def posts(self):
        return [r for r in self.requests if r[0] == "POST"]


@pytest.fixture
def notify():
    fake = FakeNotify()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def assert_signed_for_the_service(headers: dict) -> None:
    scheme, _, token = headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    assert jwt.get_unverified_header(token) == {"typ": "JWT", "alg": "HS256"}
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])  # signed with the key's secret
    assert claims["iss"] == SERVICE_ID and isinstance(claims["iat"], int)


def test_notify_sends_emails_through_the_template_and_posts_letters_as_pdf(service, notify):
    service.apply(application(START.date()))
    by_post = application(START.date(), name="Pat Post", postcode="ZZ9 9ZZ")
    del by_post["applicant"]["email"]
    posted = service.apply(by_post)["reference"]
    service.settings = replace(service.settings, notify_api_key=API_KEY, notify_template_id=TEMPLATE_ID,
                               notify_base_url=notify.url, smtp_host="127.0.0.1")
    assert isinstance(transport_for(service), NotifyTransport)  # chosen over SMTP when its key is set

    result = run_pass(service)
    messages = rows(service)
    assert result["sent"] == len(messages) == len(notify.posts()) == 6
    assert all(m.sent_at is not None for m in messages)
    requests = {data["reference"]: (path, headers, data) for _method, path, headers, data in notify.posts()}
    for message in messages:
        path, headers, data = requests[delivery_key(message)]
        assert_signed_for_the_service(headers)
        if message.recipient.startswith("post:"):
            assert path == "/v2/notifications/letter" and set(data) == {"reference", "content"}
            letter = PdfReader(io.BytesIO(base64.b64decode(data["content"])))
            text = " ".join(letter.pages[0].extract_text().split())
            assert message.template == "acknowledgement" and f"Case reference {posted}" in text
            assert "Pat Post 1 High Street Exampleton ZZ9 9ZZ" in text  # the address, for the envelope window
        else:
            assert path == "/v2/notifications/email"
            assert data == {"email_address": message.recipient, "template_id": TEMPLATE_ID,
                            "personalisation": {"subject": message.subject, "body": message.body},
                            "reference": delivery_key(message)}
    assert {m.recipient for m in messages if m.template == "acknowledgement"} == {
        "applicant@example.org", "post:1 High Street, Exampleton"}


def test_notify_repeat_after_a_crash_asks_notify_first_and_does_not_send_again(service, notify):
    [message_id] = queue_agency_emails(service, 1)
    transport = NotifyTransport(API_KEY, TEMPLATE_ID, base_url=notify.url)
    with pytest.raises(WorkerKilled):
        deliver_pending(service.sessions, DiesAfterSending(transport), sender=SENDER, now=at(0))
    assert len(notify.posts()) == 1 and rows(service)[0].sent_at is None

    assert deliver_pending(service.sessions, transport, sender=SENDER, now=at(1)) == 0  # the lease holds
    assert deliver_pending(service.sessions, transport, sender=SENDER, now=at(6)) == 1  # lease over: retried
    [row] = rows(service)
    assert row.sent_at is not None and row.attempts == 2
    methods = [(method, path) for method, path, _h, _d in notify.requests]
    assert methods == [("POST", "/v2/notifications/email"), ("GET", "/v2/notifications")]
    assert notify.requests[1][3] == {"reference": [delivery_key(row)]}
    assert len(notify.notifications) == 1


def test_notify_validation_error_fails_at_once_and_server_errors_are_retried(service, notify):
    first, second = queue_agency_emails(service, 2)
    transport = NotifyTransport(API_KEY, TEMPLATE_ID, base_url=notify.url)
    notify.status = 400
    deliver_pending(service.sessions, transport, sender=SENDER, now=at(0), limit=1)
    notify.status = 500
    deliver_pending(service.sessions, transport, sender=SENDER, now=at(0))
    refused, busy = rows(service)
    assert refused.failed_at is not None and "Not a valid email address" in refused.last_error
    assert busy.failed_at is None and busy.retry_at == START + timedelta(minutes=1) and busy.last_error


def test_transport_is_chosen_by_configuration(service, monkeypatch):
    settings = service.settings
    assert isinstance(transport_for(service), FileTransport)
    service.settings = replace(settings, smtp_host="mail.example")
    assert isinstance(transport_for(service), SmtpTransport)
    service.settings = replace(settings, notify_api_key=API_KEY)
    with pytest.raises(CaseReviewError, match="NOTIFY_TEMPLATE_ID"):
        transport_for(service)
    from engine.config import Settings

    monkeypatch.setenv("CASEREVIEW_NOTIFY_API_KEY", API_KEY)
    monkeypatch.setenv("CASEREVIEW_NOTIFY_TEMPLATE_ID", TEMPLATE_ID)
    loaded = Settings.from_env()
    assert (loaded.notify_api_key, loaded.notify_template_id) == (API_KEY, TEMPLATE_ID)


# ----- exactly once through a crash ---------------------------------------------------------
def test_file_transport_crash_between_send_and_mark_leaves_one_file(service, tmp_path):
    service.apply(application(START.date()))
    folder = tmp_path / "mail"
    with pytest.raises(WorkerKilled):
        deliver_pending(service.sessions, DiesAfterSending(FileTransport(folder)), sender=SENDER, now=at(0))
    crashed = rows(service)[0]
    assert crashed.sent_at is None and crashed.claimed_until == START + LEASE
    assert [p.name for p in folder.iterdir()] == [f"{delivery_key(crashed)}.eml"]

    assert deliver_pending(service.sessions, FileTransport(folder), sender=SENDER, now=at(1)) == 2  # the others
    assert rows(service)[0].sent_at is None  # still leased to the dead worker
    assert deliver_pending(service.sessions, FileTransport(folder), sender=SENDER, now=at(6)) == 1
    messages = rows(service)
    assert all(m.sent_at is not None for m in messages) and messages[0].attempts == 2
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{delivery_key(m)}.eml" for m in messages)
    letter = message_from_bytes((folder / f"{delivery_key(crashed)}.eml").read_bytes(), policy=policy.default)
    assert next(letter.iter_attachments()).get_content_type() == "application/pdf"


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def test_smtp_crash_between_send_and_mark_repeats_the_same_message_id(service):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        service.apply(application(START.date()))
        smtp = SmtpTransport("127.0.0.1", controller.port)
        with pytest.raises(WorkerKilled):
            deliver_pending(service.sessions, DiesAfterSending(smtp), sender=SENDER, now=at(0))
        assert deliver_pending(service.sessions, smtp, sender=SENDER, now=at(1)) == 2
        assert deliver_pending(service.sessions, smtp, sender=SENDER, now=at(6)) == 1
    finally:
        controller.stop()
    messages = rows(service)
    assert all(m.sent_at is not None for m in messages)
    ids = [m["Message-ID"] for m in inbox.messages]
    assert len(set(ids)) == len(messages) == 3  # one distinct Message-ID per message
    repeated = [i for i in ids if ids.count(i) > 1]
    assert repeated == [f"<{delivery_key(messages[0])}@council.example>"] * 2  # the crashed one, same id twice
    copies = [m for m in inbox.messages if m["Message-ID"] == repeated[0]]
    assert copies[0]["Date"] == copies[1]["Date"] and copies[0]["Subject"] == copies[1]["Subject"]


def test_a_message_whose_worker_keeps_dying_is_given_up(service):
    queue_agency_emails(service, 1)
    for attempt in range(MAX_ATTEMPTS):
        with pytest.raises(WorkerKilled):
            deliver_pending(service.sessions, DiesAfterSending(Recording()), sender=SENDER, now=at(10 * attempt))
    assert deliver_pending(service.sessions, Recording(), sender=SENDER, now=at(100)) == 0
    [row] = rows(service)
    assert row.failed_at is not None and row.sent_at is None and "never finished" in row.last_error


# ----- failures: backoff, then failed and shown to staff -------------------------------------
def test_failures_back_off_then_the_message_is_failed_and_shown_on_the_case_page(service):
    reference = service.apply(application(START.date()))["reference"]
    broken = Recording(fail_with=ConnectionRefusedError(111, "Connection refused"))
    minute, waits = 0.0, []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert deliver_pending(service.sessions, broken, sender=SENDER, now=at(minute)) == 0
        first = rows(service)[0]
        assert first.attempts == attempt and "Connection refused" in first.last_error
        if attempt < MAX_ATTEMPTS:
            assert first.failed_at is None
            wait = (first.retry_at - (START + timedelta(minutes=minute))).total_seconds() / 60
            assert deliver_pending(service.sessions, broken, sender=SENDER, now=at(minute + wait - 0.5)) == 0
            assert rows(service)[0].attempts == attempt  # not tried again before its time
            waits.append(wait)
            minute += wait
    assert waits == sorted(waits) and waits[0] < waits[-1]  # each wait longer than the one before
    assert all(m.failed_at is not None for m in rows(service))
    assert deliver_pending(service.sessions, Recording(), sender=SENDER, now=at(60 * 24 * 7)) == 0  # no more tries

    client = make_app(service).test_client()
    sign_in(client, "coordinator@demo.test")
    shown = text_of(client.get(f"/cases/{reference}/letters"))
    assert f"Not sent Delivery failed after {MAX_ATTEMPTS} attempts: ConnectionRefusedError" in shown
    assert "Connection refused" in shown


# ----- leases: two workers ------------------------------------------------------------------
@pytest.mark.parametrize("engine_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_workers_never_send_the_same_message(request, engine_url, tmp_path, clock):
    from engine.config import Settings
    from engine.service import CaseReview

    url = (f"sqlite:///{tmp_path / 'two.sqlite3'}" if engine_url == "sqlite"
           else request.getfixturevalue("postgres_url"))
    service = CaseReview(Settings(database_url=url, outbox_dir=tmp_path / "out"), clock)
    service.init()
    try:
        ids = queue_agency_emails(service, 6)
        sending, release, sent = threading.Event(), threading.Event(), []
        lock = threading.Lock()

        class Slow:
            """Worker A: holds its first message mid-send until told to go on."""

            def send(self, message):
                with lock:
                    sent.append(("A", message.id))
                if not sending.is_set():
                    sending.set()
                    assert release.wait(30)

        class Quick:
            def send(self, message):
                with lock:
                    sent.append(("B", message.id))

        worker_a = threading.Thread(target=deliver_pending, args=(service.sessions, Slow()),
                                    kwargs={"sender": SENDER, "now": at(0)})
        worker_a.start()
        assert sending.wait(30)
        deliver_pending(service.sessions, Quick(), sender=SENDER, now=at(1))  # B, while A is sending
        release.set()
        worker_a.join(30)
        assert sent[0] == ("A", ids[0]) and ("B", ids[0]) not in sent
        assert sorted(message_id for _worker, message_id in sent) == ids  # each exactly once
        assert all(m.sent_at is not None and m.attempts == 1 for m in rows(service))

        # Both at once over many messages: still each exactly once.
        more, sent[:] = queue_agency_emails(service, 30), []
        workers = [threading.Thread(target=deliver_pending, args=(service.sessions, worker),
                                    kwargs={"sender": SENDER, "now": at(2)}) for worker in (Quick(), Quick())]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert sorted(message_id for _worker, message_id in sent) == more
    finally:
        service.engine.dispose()
