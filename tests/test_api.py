"""JSON API /api/v1 with bearer tokens from `casereview token create`."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.scenarios import application

from .conftest import START
from .web_helpers import make_app


@pytest.fixture
def api(service, settings, monkeypatch):
    monkeypatch.setenv("CASEREVIEW_DATABASE_URL", settings.database_url)
    runner = CliRunner()

    def token(email):
        result = runner.invoke(main, ["token", "create", "--user", email])
        assert result.exit_code == 0, result.stderr
        value = result.stdout.strip()
        assert "\n" not in value and value.startswith("crv_")
        return {"Authorization": f"Bearer {value}"}

    client = make_app(service).test_client()
    client.token = token
    client.revoke = lambda value: runner.invoke(main, ["token", "revoke", value])
    return client


def test_tokens_are_required_and_revocable(api):
    assert api.get("/api/v1/tasks").status_code == 401
    assert api.get("/api/v1/tasks", headers={"Authorization": "Bearer nope"}).status_code == 401
    headers = api.token("police@demo.test")
    assert api.get("/api/v1/tasks", headers=headers).status_code == 200
    assert api.revoke(headers["Authorization"].split()[1]).exit_code == 0
    assert api.get("/api/v1/tasks", headers=headers).status_code == 401


def test_application_to_completion_over_the_api(api):
    coordinator = api.token("coordinator@demo.test")
    created = api.post("/api/v1/applications", json=application(START.date()), headers=coordinator)
    assert created.status_code == 201
    reference = created.get_json()["reference"]
    invalid = api.post("/api/v1/applications", json={"applicant": {}}, headers=coordinator)
    assert invalid.status_code == 422 and invalid.get_json()["errors"]
    assert api.post("/api/v1/applications", json=application(START.date()),
                    headers=api.token("police@demo.test")).status_code == 403

    police = api.token("police@demo.test")
    tasks = api.get("/api/v1/tasks", headers=police).get_json()
    assert [t["agency"] for t in tasks] == ["police"]
    task_id = tasks[0]["id"]
    detail = api.get(f"/api/v1/tasks/{task_id}", headers=police).get_json()
    assert detail["schema"]["type"] == "object" and detail["case"] == reference

    council = api.token("council@demo.test")
    assert api.post(f"/api/v1/tasks/{task_id}/complete", json={"incidents": []}, headers=council).status_code == 403
    fire = api.token("fire@demo.test")
    assert api.get(f"/api/v1/tasks/{task_id}", headers=fire).status_code == 404
    bad = api.post(f"/api/v1/tasks/{task_id}/complete", json={"incidents": "no"}, headers=police)
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"]
    ok = api.post(f"/api/v1/tasks/{task_id}/complete", json={"incidents": [], "actions_taken": "Visit."},
                  headers=police)
    assert ok.status_code == 200 and ok.get_json()["case"] == reference
    again = api.post(f"/api/v1/tasks/{task_id}/complete", json={"incidents": []}, headers=police)
    assert again.status_code in (404, 409)

    case = api.get(f"/api/v1/cases/{reference}", headers=coordinator).get_json()
    assert case["reference"] == reference and case["status"] == "open"
    assert api.get(f"/api/v1/cases/{reference}", headers=fire).status_code == 404


def test_openapi_description_is_valid(api):
    from openapi_spec_validator import validate

    document = api.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_a_task_is_read_only_by_who_may_complete_it(api, service):
    """As on the web: a police token does not read a council task of a case police can see."""
    reference = service.apply(application(START.date()))["reference"]  # police and council involved
    council_headers, police_headers = api.token("council@demo.test"), api.token("police@demo.test")
    council_task = api.get("/api/v1/tasks", headers=council_headers).get_json()[0]
    assert council_task["case"] == reference
    assert api.get(f"/api/v1/tasks/{council_task['id']}", headers=council_headers).status_code == 200
    refused = api.get(f"/api/v1/tasks/{council_task['id']}", headers=police_headers)
    assert refused.status_code == 403
    assert "council" in refused.get_json()["error"]
