"""Sessions and sign-in as OWASP ASVS level 2 asks: sessions end on the server, no one can lock
another person out, the answers say nothing about who has an account, cookies are Secure and
HSTS is sent when the service is served over HTTPS."""
from __future__ import annotations

from dataclasses import replace

import pytest

from engine.service import CaseReview
from tests.web_helpers import make_app, sign_in, text_of


@pytest.fixture
def app(service):
    return make_app(service)


def _copy_of_cookie(app, client):
    """A second browser holding a copy of the first one's session cookie."""
    thief = app.test_client()
    cookie = client.get_cookie("session")
    thief.set_cookie(cookie.key, cookie.value)
    return thief


def test_signing_out_ends_the_session_for_a_copied_cookie_too(app):
    client = app.test_client()
    sign_in(client, "coordinator@demo.test")
    thief = _copy_of_cookie(app, client)
    assert thief.get("/tasks").status_code == 200  # the copy works while the session is open
    client.post("/sign-out")
    assert thief.get("/tasks").status_code == 302  # ... and not once it has ended
    assert "/sign-in" in thief.get("/tasks").headers["Location"]


def test_a_new_password_ends_the_users_other_sessions_but_not_this_one(app):
    laptop, phone = app.test_client(), app.test_client()
    sign_in(laptop, "chair@demo.test")
    sign_in(phone, "chair@demo.test")
    response = laptop.post("/account/password", data={"current": "test-password", "new": "a-new-long-password",
                                                      "confirm": "a-new-long-password"})
    assert response.status_code == 302
    assert laptop.get("/tasks").status_code == 200
    assert phone.get("/tasks").status_code == 302


def test_deactivating_a_user_ends_their_sessions(app, service):
    officer = app.test_client()
    sign_in(officer, "police@demo.test")
    admin = app.test_client()
    sign_in(admin, "admin@demo.test")
    with service.sessions() as db:
        from sqlalchemy import select

        from engine.models import User
        police_id = db.scalar(select(User.id).where(User.email == "police@demo.test"))
    assert admin.post(f"/admin/users/{police_id}/active", data={"active": "no"}).status_code == 302
    assert officer.get("/tasks").status_code == 302
    admin.post(f"/admin/users/{police_id}/active", data={"active": "yes"})
    assert officer.get("/tasks").status_code == 302  # reactivating does not revive an ended session


def test_a_stranger_cannot_lock_a_real_user_out_and_learns_nothing(app):
    stranger = app.test_client()
    stranger.environ_base["REMOTE_ADDR"] = "203.0.113.5"
    known = [stranger.post("/sign-in", data={"email": "police@demo.test", "password": "guess"}) for _ in range(5)]
    unknown = [stranger.post("/sign-in", data={"email": "nobody@demo.test", "password": "guess"}) for _ in range(5)]
    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [400] * 5
    assert {text_of(r).split("Email address")[0] for r in known} == {text_of(r).split("Email address")[0] for r in unknown}
    slowed_known = stranger.post("/sign-in", data={"email": "police@demo.test", "password": "guess"})
    slowed_unknown = stranger.post("/sign-in", data={"email": "nobody@demo.test", "password": "guess"})
    assert slowed_known.status_code == slowed_unknown.status_code == 429
    assert text_of(slowed_known) == text_of(slowed_unknown)
    # The account is slowed for guesses, not locked: its owner, from another address, signs in.
    owner = app.test_client()
    owner.environ_base["REMOTE_ADDR"] = "192.0.2.10"
    sign_in(owner, "police@demo.test")
    assert owner.get("/tasks").status_code == 200


def test_one_address_is_throttled_whichever_accounts_it_tries(app):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    answers = [client.post("/sign-in", data={"email": f"user{n}@example.org", "password": "x"}).status_code
               for n in range(21)]
    assert answers[:20] == [400] * 20 and answers[20] == 429
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "198.51.100.8"
    assert other.post("/sign-in", data={"email": "user@example.org", "password": "x"}).status_code == 400


def test_over_https_cookies_are_secure_and_hsts_is_sent(settings, clock):
    service = CaseReview(replace(settings, https=True), clock)
    service.init()
    from engine.demo import seed_accounts
    seed_accounts(service)
    app = make_app(service)
    client = app.test_client()
    response = client.post("/sign-in", data={"email": "coordinator@demo.test", "password": "test-password"},
                           base_url="https://localhost")
    assert "Secure" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    service.engine.dispose()


def test_the_demo_over_plain_http_sends_neither(app):
    response = app.test_client().post("/sign-in", data={"email": "coordinator@demo.test", "password": "test-password"})
    assert "Secure" not in response.headers["Set-Cookie"]
    assert "Strict-Transport-Security" not in response.headers


def test_https_is_on_by_default_unless_the_service_is_addressed_over_http(monkeypatch):
    from engine.config import Settings
    monkeypatch.delenv("CASEREVIEW_HTTPS", raising=False)
    monkeypatch.setenv("CASEREVIEW_BASE_URL", "https://asb.example.gov.uk")
    assert Settings.from_env().https
    monkeypatch.setenv("CASEREVIEW_BASE_URL", "http://127.0.0.1:5000")
    assert not Settings.from_env().https
    monkeypatch.setenv("CASEREVIEW_HTTPS", "true")
    assert Settings.from_env().https


def test_a_session_unused_for_half_an_hour_ends(app, service):
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import update

    from engine.models import StaffSession
    client = app.test_client()
    sign_in(client, "reviewer@demo.test")
    assert client.get("/tasks").status_code == 200
    with service.transaction() as db:
        db.execute(update(StaffSession).values(last_seen_at=datetime.now(timezone.utc) - timedelta(minutes=31)))
    assert client.get("/tasks").status_code == 302
