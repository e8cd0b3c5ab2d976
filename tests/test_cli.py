"""The `casereview` command line contract: JSON on stdout, messages on stderr, exit codes."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.scenarios import application
from tests.conftest import START


@pytest.fixture
def cli(settings, monkeypatch):
    monkeypatch.setenv("CASEREVIEW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CASEREVIEW_OUTBOX_DIR", str(settings.outbox_dir))
    monkeypatch.setenv("CASEREVIEW_DEMO_PASSWORD", "pw-for-tests")
    monkeypatch.setenv("CASEREVIEW_CLOCK", START.isoformat())
    runner = CliRunner()

    def run(*args, input=None, expect=0):
        result = runner.invoke(main, list(args), input=input, catch_exceptions=False)
        assert result.exit_code == expect, (result.exit_code, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        return result

    run("init")
    return run


def test_init_is_idempotent_and_seed_prints_password(cli):
    assert json.loads(cli("init").stdout) == {"version": 1, "published": False}
    first = cli("seed-demo")
    assert "pw-for-tests" in first.stderr
    assert len(json.loads(first.stdout)["cases_created"]) == 6
    for email in ("coordinator", "police", "council", "housing", "chair", "reviewer"):
        assert json.loads(cli("tasks", "--user", f"{email}@demo.test", "--json").stdout), f"{email} has no demo task"
    again = json.loads(cli("seed-demo").stdout)
    assert again == {"users_created": 0, "cases_created": []}


def test_apply_complete_and_case(cli):
    cli("seed-demo")
    app = application(START.date())
    reference = json.loads(cli("apply", "--file", "-", input=json.dumps(app)).stdout)["reference"]
    tasks = json.loads(cli("tasks", "--case", reference, "--json").stdout)
    assert {t["name"] for t in tasks} == {"provide_incident_history"}
    first = tasks[0]
    assert set(first) == {"id", "case", "name", "title", "role", "agency", "due", "schema"}
    assert first["role"] == "partner" and first["agency"] in ("police", "council")
    assert first["schema"]["type"] == "object"

    mine = json.loads(cli("tasks", "--user", "police@demo.test", "--json").stdout)
    assert mine and all(t["agency"] == "police" for t in mine)

    other = "council@demo.test" if first["agency"] == "police" else "police@demo.test"
    data = json.dumps({"incidents": [], "actions_taken": "None yet."})
    denied = cli("complete", first["id"], "--user", other, "--data-file", "-", input=data, expect=3)
    assert denied.stdout == ""
    bad = cli("complete", first["id"], "--user", f"{first['agency']}@demo.test", "--data-file", "-",
              input=json.dumps({"incidents": "nope"}), expect=2)
    assert json.loads(bad.stderr)["errors"]
    done = cli("complete", first["id"], "--user", f"{first['agency']}@demo.test", "--data-file", "-", input=data)
    assert json.loads(done.stdout)["completed"] == first["id"]
    cli("complete", first["id"], "--user", f"{first['agency']}@demo.test", "--data-file", "-", input=data, expect=4)

    case = json.loads(cli("case", reference, "--json").stdout)
    assert case["reference"] == reference and case["status"] == "open"
    assert case["threshold"] is None
    assert [h["event"] for h in case["history"]][:2] == ["application_received", "task_completed"]
    assert all({"at", "actor", "event"} <= set(h) for h in case["history"])


def test_apply_rejects_invalid_application(cli):
    app = application(START.date())
    app["incidents"][0]["reported_on"] = "2026-02-30"
    result = cli("apply", "--file", "-", input=json.dumps(app), expect=2)
    assert result.stdout == ""
    assert "incidents/1/reported_on" in result.stderr or "incidents/0/reported_on" in result.stderr


def test_wake_withdraw_escalate_and_create_user(cli):
    cli("seed-demo")
    app = application(START.date(), third_party=True)
    reference = json.loads(cli("apply", "--file", "-", input=json.dumps(app)).stdout)["reference"]
    assert json.loads(cli("wake", "--at", "2026-03-03T09:00:00Z").stdout) == {"fired": 0}
    assert json.loads(cli("wake", "--at", "2026-03-20T09:00:00Z").stdout)["fired"] >= 1
    assert json.loads(cli("case", reference).stdout)["status"] == "withdrawn"

    other = json.loads(cli("apply", "--file", "-", input=json.dumps(application(START.date()))).stdout)["reference"]
    cli("escalate", other, "--reason", "Too early", expect=6)
    cli("withdraw", other)
    assert json.loads(cli("case", other).stdout)["status"] == "withdrawn"
    cli("withdraw", other, expect=6)
    cli("case", "ASB-1999-00001", expect=5)

    made = json.loads(cli("create-user", "new.officer@fire.example", "--role", "partner", "--agency", "fire").stdout)
    assert made["created"] is True and made["agency"] == "fire"
    cli("create-user", "x@y.example", "--role", "partner", expect=2)
    cli("create-user", "x@y.example", "--role", "wizard", expect=2)


def test_worker_once_delivers_letters_to_files(cli, settings):
    cli("apply", "--file", "-", input=json.dumps(application(START.date())))
    result = json.loads(cli("worker", "--once").stdout)
    assert result["sent"] >= 3  # acknowledgement and one request per agency
    files = list(settings.outbox_dir.glob("*.eml"))
    assert len(files) == result["sent"]
    assert any("Subject:" in f.read_text() for f in files)
    assert json.loads(cli("worker", "--once").stdout)["sent"] == 0
