"""Property-based fuzzing of every form a person can reach: whatever is typed into whichever
fields of any form (text with NUL bytes, unpaired surrogates, control characters, enormous
numbers, nothing at all), the answer is a page, never a server error.

The forms are found by following links from each role's start page and from the public pages,
so a form added later is fuzzed without naming it here."""
from __future__ import annotations

from urllib.parse import urljoin, urlparse

import lxml.html
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.clock import FixedClock
from engine.config import Settings
from engine.demo import seed
from engine.service import CaseReview

from .conftest import START
from .web_helpers import make_app, sign_in

ROLES = ("coordinator@demo.test", "police@demo.test", "chair@demo.test", "reviewer@demo.test",
         "admin@demo.test", "owner@demo.test", None)
PAGES_PER_ROLE = 25
NOT_FUZZED = ("/sign-out", "/active")  # would end the sessions the fuzzing runs in


def _same_site(base: str, href: str) -> str | None:
    url = urlparse(urljoin(base, href))
    if url.scheme not in ("", "http") or url.netloc not in ("", "localhost"):
        return None
    if url.path.startswith(("/static", "/assets")) or url.path.endswith((".pdf", ".zip", ".csv", ".xes", ".bpmn",
                                                                          ".json", ".dmn")):
        return None
    return url.path + (f"?{url.query}" if url.query else "")


def _crawl(client, starts: list[str]) -> list[dict]:
    """Forms (action, method, field names) on the pages reachable from `starts`."""
    seen, queue, forms = set(), list(starts), {}
    while queue and len(seen) < PAGES_PER_ROLE:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        response = client.get(path)
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        document = lxml.html.fromstring(response.get_data(as_text=True))
        for link in document.cssselect("a[href]"):
            target = _same_site(path, link.get("href"))
            if target and target not in seen and "sign-out" not in target:
                queue.append(target)
        for form in document.cssselect("form"):
            action = _same_site(path, form.get("action") or path)
            if not action or any(part in action for part in NOT_FUZZED) or (form.get("method") or "get").lower() != "post":
                continue
            names = sorted({field.get("name") for field in form.cssselect("input[name], textarea[name], select[name]")
                            if field.get("type") not in ("file",) and field.get("name") != "csrf_token"})
            forms[(action, tuple(names))] = {"action": action, "names": names}
    return list(forms.values())


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("formfuzz")
    service = CaseReview(Settings(database_url=f"sqlite:///{folder / 'db.sqlite3'}", outbox_dir=folder / "out",
                                  demo_password="test-password"), FixedClock(START))
    service.init()
    seed(service)
    app = make_app(service, PROPAGATE_EXCEPTIONS=True)
    clients, forms = {}, []
    for email in ROLES:
        client = app.test_client()
        starts = ["/", "/apply", "/track"]
        if email:
            sign_in(client, email)
            starts = [client.get("/").headers.get("Location") or "/", "/tasks", "/cases"]
        clients[email] = client
        forms += [(email, form) for form in _crawl(client, starts)]
    yield clients, forms
    service.engine.dispose()


def test_the_crawl_finds_the_forms_people_use(site):
    _clients, forms = site
    actions = {form["action"].split("?")[0] for _who, form in forms}
    assert any(action.startswith("/tasks/") for action in actions)  # task forms
    assert any(action.startswith("/apply") for action in actions)  # the public application
    assert len(forms) >= 8


HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "\udfff\ud800", "\r\nBcc: x@example.org", "9" * 40, "-1",
                     "0", "", " ", "<script>alert(1)</script>", "{{ 7*7 }}", "../../etc/passwd", "2026-02-30",
                     "99999999999999999999", "true", "null", "[]"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_form_answers_with_a_server_error(site, data):
    clients, forms = site
    who, form = data.draw(st.sampled_from(forms), label="form")
    names = form["names"]
    chosen = data.draw(st.lists(st.sampled_from(names), unique=True), label="fields") if names else []
    answers = {name: data.draw(HOSTILE_TEXT, label=name) for name in chosen}
    try:
        response = clients[who].post(form["action"], data=answers)
    except ValueError as exc:  # the test client itself cannot encode an unpaired surrogate
        assert "surrogate" in str(exc)
        return
    assert response.status_code < 500, (who, form["action"], answers, response.get_data(as_text=True)[:300])
