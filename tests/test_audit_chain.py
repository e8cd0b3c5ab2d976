"""The audit trail is a hash chain: tampering with it (a changed, deleted or moved row) is found
by `casereview audit verify`; the database refuses changes; concurrent writers never fork it;
administrators read it at /admin/audit."""
from __future__ import annotations

import csv
import io
import json
import threading

import pytest
import sqlalchemy as sa
from alembic import command
from click.testing import CliRunner

from engine import audit
from engine.cli import main
from engine.clock import FixedClock
from engine.config import Settings
from engine.demo import seed_accounts
from engine.models import AuditEvent, Case
from engine.schema import alembic_config
from engine.scenarios import application
from engine.service import CaseReview

from .conftest import START
from .web_helpers import make_app, page, sign_in


def chain(service) -> dict:
    with service.sessions() as db:
        return audit.verify_chain(db).as_dict()


def verify_cli(service, monkeypatch, expect: int) -> dict:
    monkeypatch.setenv("CASEREVIEW_DATABASE_URL", service.settings.database_url)
    result = CliRunner().invoke(main, ["audit", "verify"], catch_exceptions=False)
    assert result.exit_code == expect, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def raw(service, *statements: str) -> None:
    """Tamper as someone with database access would: plain SQL, the append-only trigger off."""
    postgres = service.engine.dialect.name == "postgresql"
    with service.engine.begin() as connection:
        if postgres:
            connection.exec_driver_sql("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
        else:
            connection.exec_driver_sql("DROP TRIGGER audit_event_no_update")
            connection.exec_driver_sql("DROP TRIGGER audit_event_no_delete")
        for statement in statements:
            connection.exec_driver_sql(statement)


@pytest.fixture
def bare(database_url, tmp_path):
    """A published database without demo accounts (hashing their passwords is slow)."""
    service = CaseReview(Settings(database_url=database_url, outbox_dir=tmp_path / "outbox",
                                  demo_password="test-password"), FixedClock(START))
    service.init()
    yield service
    service.engine.dispose()


@pytest.fixture
def sqlite_only(tmp_path):
    service = CaseReview(Settings(database_url=f"sqlite:///{tmp_path / 'chain.sqlite3'}", outbox_dir=tmp_path / "outbox"),
                         FixedClock(START))
    service.init()
    write_events(service, 4)
    yield service
    service.engine.dispose()


def write_events(service, count: int) -> None:
    for number in range(count):
        with service.transaction() as db:
            audit.record(db, at=service.now(), actor="coordinator@demo.test", event="case_viewed",
                         detail={"page": "case", "n": number})


def test_commands_extend_one_intact_chain_without_free_text(bare, monkeypatch):
    reference = bare.apply(application(START.date()))["reference"]
    bare.withdraw(reference, reason="Moving away from John Smith at 4 Elm Road")
    report = verify_cli(bare, monkeypatch, expect=0)
    with bare.sessions() as db:
        rows = db.execute(sa.select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
    assert report == {"ok": True, "events": len(rows), "head": {"seq": rows[-1].seq, "hash": rows[-1].hash}}
    assert [r.event for r in rows] == ["process_published", "application_received", "withdrawal_requested"]
    assert [r.seq for r in rows] == [1, 2, 3]
    assert [r.prev_hash for r in rows] == [audit.GENESIS, rows[0].hash, rows[1].hash]
    # The reason stays in the case (its letter), not in the permanent audit trail.
    assert rows[2].detail["withheld"] == ["withdrawal_reason"]
    assert not any("John Smith" in json.dumps(r.detail) for r in rows)


def test_database_refuses_changes_and_tampering_is_found(bare, monkeypatch):
    write_events(bare, 5)
    for statement in ("UPDATE audit_event SET actor = 'someone else'", "DELETE FROM audit_event WHERE seq = 3"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with bare.engine.begin() as connection:
                connection.exec_driver_sql(statement)
    assert verify_cli(bare, monkeypatch, expect=0)["events"] == 6

    raw(bare, """UPDATE audit_event SET detail = '{"page": "case", "n": 99}' WHERE seq = 2""",
        "DELETE FROM audit_event WHERE seq = 4")
    report = verify_cli(bare, monkeypatch, expect=1)
    assert report["ok"] is False and report["events"] == 5
    assert [(p["seq"], p["problem"]) for p in report["problems"]] == [(2, "changed"), (5, "deleted")]
    assert "seq 4" in report["problems"][1]["why"]


def test_moved_rows_are_reported_as_reordered(sqlite_only):
    raw(sqlite_only, "UPDATE audit_event SET seq = -2 WHERE seq = 2", "UPDATE audit_event SET seq = 2 WHERE seq = 3",
        "UPDATE audit_event SET seq = 3 WHERE seq = -2")
    report = chain(sqlite_only)
    assert report["ok"] is False
    assert report["problems"][0]["seq"] == 2 and report["problems"][0]["problem"] == "reordered"
    assert {p["problem"] for p in report["problems"]} == {"reordered"}


def test_a_row_written_around_the_chain_is_reported(sqlite_only):
    raw(sqlite_only, "INSERT INTO audit_event (at, actor, event, detail) VALUES ('2026-03-02 10:00:00', 'x', 'forged', '{}')")
    report = chain(sqlite_only)
    assert [p["problem"] for p in report["problems"]] == ["unchained"]


def test_migration_chains_rows_that_were_there_before(tmp_path):
    """Rows written before migration 0004 are chained in id order, with typed reasons taken out."""
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = sa.create_engine(url)
    config = alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        connection.exec_driver_sql(
            "INSERT INTO audit_event (at, actor, event, detail) VALUES "
            "('2026-01-05 10:00:00.000000', 'system', 'process_published', '{\"version\": 1}'), "
            "('2026-01-06 11:30:00.250000', 'applicant', 'withdrawal_requested', "
            "'{\"message\": \"withdrawal_requested\", \"withdrawal_reason\": \"Jo Bloggs moved\"}')")
        command.upgrade(config, "heads")
        connection.commit()
    engine.dispose()
    service = CaseReview(Settings(database_url=url, outbox_dir=tmp_path / "outbox"), FixedClock(START))
    service.init()
    report = chain(service)
    assert report["ok"] is True and report["events"] == 3  # the two old rows and the publication
    with service.sessions() as db:
        old = db.scalars(sa.select(AuditEvent).order_by(AuditEvent.id).limit(2)).all()
    assert [row.seq for row in old] == [1, 2]
    assert old[1].detail == {"message": "withdrawal_requested", "withheld": ["withdrawal_reason"]}
    service.engine.dispose()


@pytest.mark.postgres
def test_concurrent_appends_on_postgres_keep_a_single_chain(postgres_url, tmp_path):
    service = CaseReview(Settings(database_url=postgres_url, outbox_dir=tmp_path / "outbox"), FixedClock(START))
    service.init()
    writers, appends = 6, 8
    barrier, failures = threading.Barrier(writers), []

    def write(number: int) -> None:
        try:
            barrier.wait()
            for step in range(appends):
                with service.transaction() as db:
                    audit.record(db, at=service.now(), actor=f"writer-{number}", event="case_viewed",
                                 detail={"step": step})
        except Exception as exc:  # reported below: a thread's exception would otherwise vanish
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    report = chain(service)
    assert report["ok"] is True and report["events"] == 1 + writers * appends
    assert report["head"]["seq"] == report["events"]
    service.engine.dispose()


@pytest.mark.postgres
def test_a_case_view_waiting_for_a_command_on_the_case_does_not_deadlock(postgres_url, tmp_path):
    """A command holds its case FOR UPDATE until it commits, writing its audit row last; a view of
    the same case meanwhile waits for the case before it takes the chain lock, never after."""
    service = CaseReview(Settings(database_url=postgres_url, outbox_dir=tmp_path / "outbox"), FixedClock(START))
    service.init()
    reference = service.apply(application(START.date()))["reference"]
    with service.sessions() as db:
        case_id = db.scalar(sa.select(Case.id).where(Case.reference == reference))
    failures = []

    def view() -> None:
        try:
            with service.transaction() as db:
                audit.record(db, at=service.now(), actor="chair@demo.test", event="case_viewed", case_id=case_id)
        except Exception as exc:
            failures.append(exc)

    with service.transaction() as command_db:
        command_db.execute(sa.select(Case).where(Case.id == case_id).with_for_update())
        viewer = threading.Thread(target=view)
        viewer.start()
        with service.engine.connect() as watcher:  # wait until the view is blocked on a lock
            while not watcher.execute(sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()")).scalar():
                watcher.rollback()
        audit.record(command_db, at=service.now(), actor="coordinator@demo.test", event="task_completed",
                     case_id=case_id)
    viewer.join()
    assert failures == []
    report = chain(service)
    assert report["ok"] is True and report["events"] == 4
    service.engine.dispose()


# ----- the administrators' viewer ------------------------------------------------------------
@pytest.fixture
def viewer(bare):
    """Two cases received on 2 March; on 3 March 55 views of the first by the coordinator and one of
    the second by an actor named like a spreadsheet formula."""
    first = bare.apply(application(START.date()))["reference"]
    second = bare.apply(application(START.date(), name="Chris Patel"))["reference"]
    with bare.sessions() as db:
        ids = dict(db.execute(sa.select(Case.reference, Case.id)).all())
    bare.clock.set(START.replace(day=3))
    for _ in range(55):
        with bare.transaction() as db:
            audit.record(db, at=bare.now(), actor="coordinator@demo.test", event="case_viewed", case_id=ids[first])
    with bare.transaction() as db:
        audit.record(db, at=bare.now(), actor="=cmd|' /C calc'!A0", event="case_viewed", case_id=ids[second])
    seed_accounts(bare)
    client = make_app(bare).test_client()
    sign_in(client, "admin@demo.test")
    return client, first, second


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_administrators_filter_page_and_download_the_trail(viewer):
    client, first, second = viewer

    one_case = client.get(f"/admin/audit?reference={first.lower()}&event=case_viewed")
    assert one_case.status_code == 200
    listed = rows(one_case)
    assert len(listed) == 50 and {r[3] for r in listed} == {first} and {r[1] for r in listed} == {"coordinator@demo.test"}
    next_link = page(one_case).cssselect(".govuk-pagination__next a")[0].get("href")
    assert len(rows(client.get(next_link))) == 5

    received = rows(client.get("/admin/audit?event=application_received&since=2026-03-02&until=2026-03-02"))
    assert sorted(r[3] for r in received) == sorted([first, second])
    assert rows(client.get("/admin/audit?event=application_received&since=2026-03-03")) == []
    assert {r[1] for r in rows(client.get("/admin/audit?actor=COORDINATOR"))} == {"coordinator@demo.test"}

    wrong = client.get("/admin/audit?since=2026-02-30&actor=someone")
    assert wrong.status_code == 422
    assert page(wrong).cssselect(".govuk-error-summary a[href='#since']")
    assert page(wrong).cssselect("#actor")[0].get("value") == "someone"

    download = client.get(f"/admin/audit.csv?reference={second}")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    table = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    assert [(r["event"], r["case"]) for r in table] == [("case_viewed", second), ("application_received", second)]
    assert table[0]["actor"].startswith("'=")  # a spreadsheet shows it as text, never runs it
    assert _last_event(client) == "audit_trail_downloaded"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_only_administrators_see_the_trail(bare):
    seed_accounts(bare)
    for email in ("coordinator@demo.test", "reviewer@demo.test", "police@demo.test"):
        client = make_app(bare).test_client()
        sign_in(client, email)
        assert client.get("/admin/audit").status_code == 403
        assert client.get("/admin/audit.csv").status_code == 403
    assert make_app(bare).test_client().get("/admin/audit").status_code == 302  # to sign in


def rows(response) -> list[list[str]]:
    return [[" ".join(td.text_content().split()) for td in tr.cssselect("td")]
            for tr in page(response).cssselect("table tbody tr")]


def _last_event(client) -> str:
    listed = page(client.get("/admin/audit"))
    return listed.cssselect("table tbody tr td")[2].text_content().strip().replace(" ", "_").lower()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_events_follow_their_transaction(bare):
    """Events join the chain when their transaction commits: a rolled-back savepoint takes its own
    events along and leaves the others; a rolled-back transaction writes none."""
    with bare.transaction() as db:
        audit.record(db, at=bare.now(), actor="system", event="kept_before")
        with pytest.raises(ValueError):
            with db.begin_nested():
                audit.record(db, at=bare.now(), actor="system", event="rolled_back")
                raise ValueError
        with db.begin_nested():
            audit.record(db, at=bare.now(), actor="system", event="kept_in_savepoint")
    with pytest.raises(ValueError):
        with bare.transaction() as db:
            audit.record(db, at=bare.now(), actor="system", event="never_committed")
            raise ValueError
    with bare.sessions() as db:
        events = list(db.scalars(sa.select(AuditEvent.event).order_by(AuditEvent.seq)))
    assert events == ["process_published", "kept_before", "kept_in_savepoint"]
    assert chain(bare)["ok"] is True
