"""No input makes a server error: NUL bytes, lone surrogates, numbers too large for the database,
JSON nested without end and header injection are refused at the door with a 4xx (a clear message),
on SQLite and PostgreSQL, in the pages, the API and the command line."""
from __future__ import annotations

import json

import hypothesis
import pytest
from click.testing import CliRunner
from hypothesis import strategies as st

from engine.cli import main
from engine.scenarios import application
from engine.tokens import create_token
from tests.conftest import START
from tests.web_helpers import make_app, sign_in, text_of

NUL = "\x00"


@pytest.fixture
def app(service):
    return make_app(service)


@pytest.fixture
def reference(service):
    return service.apply(application(START.date()))["reference"]


def _signed_in(app, email):
    client = app.test_client()
    sign_in(client, email)
    return client


@pytest.mark.parametrize("email, url", [
    ("coordinator@demo.test", "/cases?q=%00"),
    ("coordinator@demo.test", "/tasks?agency=%00"),
    ("coordinator@demo.test", "/cases/%00"),
    ("coordinator@demo.test", "/tasks/%00"),
    ("police@demo.test", "/cases?q=a%00b"),
    ("admin@demo.test", "/admin/audit?actor=%00"),
    ("admin@demo.test", "/admin/subject-access?name=%00"),
])
def test_a_nul_byte_in_an_address_is_refused_before_the_database(app, email, url):
    response = _signed_in(app, email).get(url)
    assert response.status_code == 400
    assert "must not contain a NUL character" in text_of(response)


def test_numbers_too_large_for_the_database_find_nothing(app, reference):
    coordinator = _signed_in(app, "coordinator@demo.test")
    assert coordinator.get(f"/cases/{reference}/letters/99999999999999999999.pdf").status_code == 404
    admin = _signed_in(app, "admin@demo.test")
    response = admin.get("/admin/audit?page=99999999999999999999")
    assert response.status_code == 200  # the last page there could be: empty, not a crash


def test_a_nul_byte_in_a_posted_answer_keeps_nothing_and_says_why(app):
    client = app.test_client()
    client.get("/apply")
    response = client.post("/apply/contact", data={"name": f"Alex{NUL}Morgan", "email": "alex@example.org"})
    assert response.status_code == 400
    assert "must not contain a NUL character" in text_of(response)


def test_sign_in_ignores_a_next_address_carrying_a_header(app):
    client = app.test_client()
    response = client.post("/sign-in?next=/cases%0d%0aSet-Cookie:%20a=b",
                           data={"email": "coordinator@demo.test", "password": "test-password"})
    assert response.status_code == 302
    assert "\n" not in response.headers["Location"] and "Set-Cookie" not in response.headers["Location"]


@pytest.fixture
def api(app, service):
    with service.transaction() as db:
        token = create_token(db, "coordinator@demo.test", now=service.now())
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


@pytest.mark.parametrize("url", ["/api/v1/cases/%00", "/api/v1/tasks/%00"])
def test_the_api_refuses_a_nul_byte_in_its_paths(api, url):
    response = api.get(url)
    assert response.status_code == 400
    assert "NUL" in response.get_json()["error"]


@pytest.mark.parametrize("body, field", [
    ('{"applicant": {"name": "A\\u0000B"}}', "applicant/name"),
    ('{"applicant": {"name": "\\ud800"}}', "applicant/name"),
    ("[" * 100_000 + "]" * 100_000, "(input)"),
])
def test_the_api_refuses_unstorable_json_with_the_field_named(api, body, field):
    response = api.post("/api/v1/applications", data=body, content_type="application/json")
    assert response.status_code == 422
    assert field in [error["field"] for error in response.get_json()["errors"]]


def test_an_email_address_carrying_a_second_header_is_refused_at_the_door(api, service):
    sample = application(START.date())
    sample["applicant"]["email"] = "alex@example.org\r\nBcc: everyone@example.org"
    response = api.post("/api/v1/applications", json=sample)
    assert response.status_code == 422
    assert "applicant/email" in [error["field"] for error in response.get_json()["errors"]]
    with service.sessions() as db:
        from sqlalchemy import func, select

        from engine.models import Case
        assert db.scalar(select(func.count()).select_from(Case)) == 0


@pytest.fixture
def cli(settings, monkeypatch):
    monkeypatch.setenv("CASEREVIEW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CASEREVIEW_OUTBOX_DIR", str(settings.outbox_dir))
    monkeypatch.setenv("CASEREVIEW_CLOCK", START.isoformat())
    runner = CliRunner()

    def run(*args, input=None):
        result = runner.invoke(main, list(args), input=input)
        assert "Traceback" not in result.stderr
        assert result.exception is None or isinstance(result.exception, SystemExit)
        return result

    return run


def _incident(description="Noise at night"):
    return {"occurred_on": "2026-02-01", "reported_on": "2026-02-20", "reported_to": "police",
            "description": description}


@pytest.mark.parametrize("request_text, message", [
    (json.dumps({"application_date": "2026-03-01", "incidents": [_incident()] * 100_000}),
     "at most 1,000 incidents"),
    ("[" * 100_000, "nested more than"),
    (json.dumps({"application_date": "2026-03-01", "incidents": [_incident(f"a{NUL}b")]}), "NUL"),
    ('{"application_date": "2026-03-01", "incidents": [{"description": "\\udfff"}]}', "surrogate"),
])
def test_the_command_line_exits_2_with_a_message_for_the_same_inputs(cli, request_text, message):
    result = cli("threshold-check", input=request_text)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert message in result.stderr


def test_casereview_apply_refuses_a_bad_email_with_exit_2(cli):
    cli("init")
    sample = application(START.date())
    sample["applicant"]["email"] = "alex@example.org\nBcc: b@example.org"
    result = cli("apply", "--file", "-", input=json.dumps(sample))
    assert result.exit_code == 2
    assert "applicant/email" in result.stderr


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(["\x00", "\ud800", "2026-02-30", "2026-03-01", "police", "self"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["application_date", "incidents", "occurred_on", "reported_on", "hate", "applicant",
                         "victim", "impact", "name", "relationship_to_victim", "type", "description", "x"]),
        children, max_size=5),
    max_leaves=25)


@hypothesis.settings(max_examples=60, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(value=JSON_VALUES, command=st.sampled_from(["threshold-check", "apply"]))
def test_the_command_lines_json_inputs_never_end_in_a_traceback(cli_once, value, command):
    arguments = ["apply", "--file", "-"] if command == "apply" else ["threshold-check"]
    text = json.dumps(value)
    result = CliRunner().invoke(main, arguments, input=text, env=cli_once)
    assert result.exit_code in (0, 2), (result.exit_code, text, result.stderr[-500:])
    assert "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), (text, result.exception)


@pytest.fixture(scope="module")
def cli_once(tmp_path_factory):
    """One initialised SQLite database for every example (hypothesis runs many per test)."""
    folder = tmp_path_factory.mktemp("clifuzz")
    env = {"CASEREVIEW_DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}", "CASEREVIEW_OUTBOX_DIR": str(folder / "out"),
           "CASEREVIEW_CLOCK": START.isoformat()}
    assert CliRunner().invoke(main, ["init"], env=env).exit_code == 0
    return env
