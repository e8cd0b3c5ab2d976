"""Reports over a seeded year of cases driven through the engine: the statutory figures (engine,
CLI, web page, CSV, JSON), the dashboard, process analytics and the event log export.

The year (financial year 1 April 2025 to 31 March 2026) is built once per database, case by case
with the clock moved to each step's day, so every figure below is counted by hand from the table
in `SeededYear.build`.
"""
from __future__ import annotations

import csv
import io
import json
import statistics
import uuid
from datetime import date, datetime, time, timedelta, timezone

import lxml.etree
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from engine.cli import main
from engine.clock import FixedClock
from engine.config import Settings
from engine.demo import seed_accounts
from engine.reports import (build_dashboard, last_complete_financial_year, last_twelve_months, process_analytics,
                            statutory_figures)
from engine.reports.measures import nearest_rank, working_days_for
from engine.reports.periods import Period
from engine.scenarios import Walker, application
from engine.service import CaseReview
from engine.workdays import working_days_between

from .conftest import POSTGRES_URL
from .web_helpers import make_app, page, sign_in, text_of

FY = Period(date(2025, 4, 1), date(2026, 3, 31))
TODAY = date(2026, 4, 15)
NOW = datetime.combine(TODAY, time(10), timezone.utc)
XES = "{http://www.xes-standard.org/}"

# Hand-counted from SeededYear.build for FY (labels of the cases counted).
EXPECTED_FY = {
    "applications": 18,  # A1-A18
    "threshold_not_met": 6,  # P2 (decided 14 April), A2, A8 (withdrawn later), A10 (overridden), A12, A16 (31 March)
    "reviews_carried_out": 8,  # P1 (panel 10 April), A1, A5, A6 (reconvened: once), A7 (withdrawn later), A9, A11, A13
    "reviews_with_recommendations": 6,  # P1, A1, A6, A7, A9, A13 (A5 and A11 agreed no action)
}


def on(clock: FixedClock, day: date) -> None:
    clock.set(datetime.combine(day, time(10), timezone.utc))


class SeededYear:
    """Builds the cases and remembers their references by label."""

    def __init__(self, service: CaseReview, clock: FixedClock):
        self.service, self.clock = service, clock
        self.refs: dict[str, str] = {}

    def apply(self, label: str, received: date, **kwargs) -> tuple[Walker, dict]:
        on(self.clock, received)
        app = application(received, name=f"Victim {label}", **kwargs)
        self.refs[label] = self.service.apply(app)["reference"]
        walker = Walker(self.service, self.refs[label])
        if kwargs.get("third_party"):
            on(self.clock, received + timedelta(days=1))
            walker.complete("victim_consent", {"consent": "given"})
        return walker, app

    def decide(self, label: str, received: date, decided: date, *, met: bool = True, override: bool = False,
               **kwargs) -> Walker:
        """Apply, gather the histories (2 days later), verify (5 days later), confirm on `decided`.
        `met` is the computed result (3 incidents or 1); `override` reverses it."""
        walker, app = self.apply(label, received, incidents=kwargs.pop("incidents", 3 if met else 1), **kwargs)
        on(self.clock, received + timedelta(days=2))
        walker.provide_histories()
        on(self.clock, received + timedelta(days=5))
        walker.verify(app["incidents"])
        on(self.clock, decided)
        walker.confirm("The victim is vulnerable and the panel should look at it." if override else None)
        return walker

    def review(self, label: str, received: date, decided: date, panel: date, actions: list[dict],
               follow_up: int = 30, **kwargs) -> Walker:
        """Up to the panel outcome on `panel`, with the action plan `actions` (agency, due)."""
        walker = self.decide(label, received, decided, **kwargs)
        on(self.clock, decided + timedelta(days=1))
        walker.schedule_panel(panel)
        on(self.clock, panel - timedelta(days=1))
        walker.panel_inputs()
        on(self.clock, panel)
        self.outcome(walker, actions, follow_up)
        return walker

    def outcome(self, walker: Walker, actions: list[dict], follow_up: int = 30) -> None:
        plan = [{"description": f"Action for {a['agency']}", "agency": a["agency"], "owner": "Named officer",
                 "due": a["due"].isoformat()} for a in actions]
        walker.complete("panel_outcome", {"attendees": ["Police", "Council"], "findings": "Reports were handled apart.",
                                          "recommendations": ["Work together"] if plan else [], "actions": plan,
                                          "follow_up_working_days": follow_up})

    def complete_action(self, walker: Walker, agency: str, day: date) -> None:
        on(self.clock, day)
        task = next(t for t in walker.ready("deliver_action") if t.agency == agency)
        self.service.complete(task.id, walker.actor_for(task), {"status": "completed", "progress_note": "Done."})

    def escalate(self, label: str, day: date) -> None:
        on(self.clock, day)
        self.service.escalate(self.refs[label], "The review missed reports to the housing provider.")

    def build(self) -> "SeededYear":
        d = date
        svc, clock = self.service, self.clock
        # Built first, while nothing else has a timer: the consent deadline and a follow-up fire.
        # A3: third party, no consent in 10 working days: withdrawn by the timer.
        on(clock, d(2025, 4, 10))
        self.refs["A3"] = svc.apply(application(d(2025, 4, 10), third_party=True, name="Victim A3"))["reference"]
        on(clock, d(2025, 5, 1))
        svc.fire_due_timers()
        # A6: reviewed 12 May, follow-up after 5 working days says reconvene, second panel 9 June.
        a6 = self.review("A6", d(2025, 4, 14), d(2025, 4, 28), d(2025, 5, 12),
                         [{"agency": "police", "due": d(2025, 6, 30)}], follow_up=5)
        on(clock, d(2025, 5, 20))
        svc.fire_due_timers()
        a6.complete("follow_up", {"outcome": "reconvene", "victim_feedback": "Still going on."})
        on(clock, d(2025, 5, 21))
        a6.schedule_panel(d(2025, 6, 9))
        on(clock, d(2025, 6, 8))
        a6.panel_inputs()
        on(clock, d(2025, 6, 9))
        self.outcome(a6, [{"agency": "council", "due": d(2025, 7, 31)}])
        self.complete_action(a6, "council", d(2025, 7, 20))  # on time; the police action stays open: overdue

        # The previous financial year, and its boundary.
        p1 = self.review("P1", d(2025, 3, 20), d(2025, 3, 31), d(2025, 4, 10),
                         [{"agency": "police", "due": d(2025, 5, 15)}])
        self.complete_action(p1, "police", d(2025, 5, 10))  # on time
        self.decide("P2", d(2025, 3, 31), d(2025, 4, 14), met=False)
        self.decide("P3", d(2025, 3, 3), d(2025, 3, 31), met=False)

        # This financial year.
        a1 = self.review("A1", d(2025, 4, 1), d(2025, 4, 16), d(2025, 5, 7),
                         [{"agency": "council", "due": d(2025, 6, 1)}, {"agency": "police", "due": d(2025, 6, 30)}])
        self.complete_action(a1, "council", d(2025, 6, 10))  # late; police overdue
        a2 = self.decide("A2", d(2025, 4, 1), d(2025, 4, 22), met=False, third_party=True)
        on(clock, d(2025, 4, 25))
        a2.complete("safety_net", {"further_actions": [], "summary": "Mediation offered."})  # closed
        self.apply("A4", d(2025, 5, 6))
        on(clock, d(2025, 5, 12))
        svc.withdraw(self.refs["A4"], reason="Moved house")
        self.review("A5", d(2025, 5, 12), d(2025, 6, 2), d(2025, 6, 20), [])
        self.review("A7", d(2025, 6, 16), d(2025, 7, 1), d(2025, 7, 22), [{"agency": "police", "due": d(2025, 8, 15)}],
                    hate=True, incidents=1)
        on(clock, d(2025, 8, 1))
        svc.withdraw(self.refs["A7"], reason="Moved house")  # the police action is stopped
        self.decide("A8", d(2025, 7, 7), d(2025, 7, 21), met=False)
        on(clock, d(2025, 7, 25))
        svc.withdraw(self.refs["A8"], reason="Things are better")
        a9 = self.review("A9", d(2025, 8, 4), d(2025, 8, 18), d(2025, 9, 10),
                         [{"agency": "council", "due": d(2025, 10, 10)}], met=False, override=True)
        self.complete_action(a9, "council", d(2025, 10, 1))  # on time
        self.decide("A10", d(2025, 9, 1), d(2025, 9, 15), override=True)  # computed met, decided not met
        self.escalate("A9", d(2025, 9, 22))
        on(clock, d(2025, 9, 29))
        a9.complete("decide_escalation", {"decision": "not_upheld", "reasons": "The review followed the procedure."})
        self.escalate("A10", d(2025, 9, 22))
        on(clock, d(2025, 9, 30))
        a10 = Walker(svc, self.refs["A10"])
        a10.complete("decide_escalation", {"decision": "upheld", "reasons": "The housing reports were missed."})
        on(clock, d(2025, 10, 2))
        a10.complete("act_on_escalation", {"response": "The threshold will be looked at again."})
        self.review("A11", d(2025, 10, 6), d(2025, 10, 27), d(2025, 11, 17), [], third_party=True)
        self.decide("A12", d(2025, 11, 3), d(2025, 11, 24), met=False)
        self.escalate("A12", d(2026, 1, 12))  # waiting for a decision
        self.review("A13", d(2025, 12, 1), d(2026, 1, 5), d(2026, 2, 2), [{"agency": "police", "due": d(2026, 5, 29)}])
        self.apply("A14", d(2026, 1, 12))  # incident histories still awaited
        a15 = self.decide("A15", d(2026, 2, 2), d(2026, 2, 16))
        on(clock, d(2026, 2, 17))
        a15.schedule_panel(d(2026, 3, 10))
        self.decide("A16", d(2026, 3, 2), d(2026, 3, 31), met=False)
        self.decide("A17", d(2026, 3, 31), d(2026, 4, 14))
        self.review("A18", d(2026, 3, 16), d(2026, 3, 30), d(2026, 4, 1),
                    [{"agency": "council", "due": d(2026, 4, 30)}])

        # The next financial year.
        self.apply("N1", d(2026, 4, 1))
        self.apply("N2", d(2026, 4, 13), third_party=False)
        on(clock, NOW.date())
        return self


# Receipt and decision days of the decisions made in FY (from build), for the dashboard.
DECISIONS_FY = [(date(2025, 3, 31), date(2025, 4, 14)), (date(2025, 4, 1), date(2025, 4, 16)),
                (date(2025, 4, 1), date(2025, 4, 22)), (date(2025, 4, 14), date(2025, 4, 28)),
                (date(2025, 5, 12), date(2025, 6, 2)), (date(2025, 6, 16), date(2025, 7, 1)),
                (date(2025, 7, 7), date(2025, 7, 21)), (date(2025, 8, 4), date(2025, 8, 18)),
                (date(2025, 9, 1), date(2025, 9, 15)), (date(2025, 10, 6), date(2025, 10, 27)),
                (date(2025, 11, 3), date(2025, 11, 24)), (date(2025, 12, 1), date(2026, 1, 5)),
                (date(2026, 2, 2), date(2026, 2, 16)), (date(2026, 3, 2), date(2026, 3, 31)),
                (date(2026, 3, 16), date(2026, 3, 30))]
# Decision and first panel days of the reviews counted in FY.
PANELS_FY = [(date(2025, 3, 31), date(2025, 4, 10)), (date(2025, 4, 16), date(2025, 5, 7)),
             (date(2025, 6, 2), date(2025, 6, 20)), (date(2025, 4, 28), date(2025, 5, 12)),
             (date(2025, 7, 1), date(2025, 7, 22)), (date(2025, 8, 18), date(2025, 9, 10)),
             (date(2025, 10, 27), date(2025, 11, 17)), (date(2026, 1, 5), date(2026, 2, 2))]


def _make_year(url: str, outbox) -> tuple[CaseReview, SeededYear]:
    clock = FixedClock(datetime(2025, 3, 3, 10, tzinfo=timezone.utc))
    service = CaseReview(Settings(database_url=url, outbox_dir=outbox, demo_password="test-password"), clock)
    service.init()
    seed_accounts(service)
    return service, SeededYear(service, clock).build()


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    """The seeded year on SQLite (every test below); see year_on_postgres for the SQL that differs."""
    folder = tmp_path_factory.mktemp("reports")
    service, seeded = _make_year(f"sqlite:///{folder / 'reports.sqlite3'}", folder / "outbox")
    yield seeded
    service.engine.dispose()


@pytest.fixture(scope="module")
def year_on_postgres(tmp_path_factory):
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    schema = f"t_reports_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is needed at {POSTGRES_URL}: {exc}")
    service, seeded = _make_year(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}",
                                 tmp_path_factory.mktemp("reports-pg") / "outbox")
    yield seeded
    service.engine.dispose()
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def figures(seeded: SeededYear, period: Period) -> dict[str, int]:
    with seeded.service.sessions() as db:
        return statutory_figures(db, period).as_dict()


# ----- the statutory figures ----------------------------------------------------------------------
def test_statutory_figures_for_the_financial_year(year):
    assert figures(year, FY) == EXPECTED_FY
    assert list(figures(year, FY)) == ["applications", "threshold_not_met", "reviews_carried_out",
                                       "reviews_with_recommendations"]


@pytest.mark.postgres
def test_statutory_figures_and_dashboard_agree_on_postgresql(year, year_on_postgres):
    assert figures(year_on_postgres, FY) == EXPECTED_FY
    for period in (Period(date(2025, 3, 31), date(2025, 3, 31)), Period(date(2026, 4, 1), TODAY)):
        assert figures(year_on_postgres, period) == figures(year, period)
    with year.service.sessions() as lite, year_on_postgres.service.sessions() as pg:
        assert build_dashboard(pg, FY, TODAY) == build_dashboard(lite, FY, TODAY)
        lite_process, pg_process = process_analytics(lite, FY, NOW), process_analytics(pg, FY, NOW)
    assert (pg_process.cases, pg_process.events, pg_process.stages, pg_process.steps) == \
        (lite_process.cases, lite_process.events, lite_process.stages, lite_process.steps)


def test_period_boundaries(year):
    # 31 March 2025 alone: P2 was received, P3 decided "not met"; P1's decision that day was "met".
    assert figures(year, Period(date(2025, 3, 31), date(2025, 3, 31))) == {
        "applications": 1, "threshold_not_met": 1, "reviews_carried_out": 0, "reviews_with_recommendations": 0}
    # 1 April 2025 alone: A1 and A2 received; nothing decided or reviewed that day.
    assert figures(year, Period(date(2025, 4, 1), date(2025, 4, 1)))["applications"] == 2
    # The next financial year so far: N1 (1 April), N2; A17's decision was "met"; A18's panel on 1 April.
    assert figures(year, Period(date(2026, 4, 1), TODAY)) == {
        "applications": 2, "threshold_not_met": 0, "reviews_carried_out": 1, "reviews_with_recommendations": 1}
    # A6's reconvened panel (9 June) is not a second review.
    assert figures(year, Period(date(2025, 6, 1), date(2025, 6, 30)))["reviews_carried_out"] == 1  # A5 only


def test_default_period_is_the_last_complete_financial_year():
    assert last_complete_financial_year(date(2026, 4, 15)) == FY
    assert last_complete_financial_year(date(2026, 3, 31)) == Period(date(2024, 4, 1), date(2025, 3, 31))
    assert last_complete_financial_year(date(2026, 4, 1)) == FY
    assert last_twelve_months(date(2026, 4, 15)) == Period(date(2025, 5, 1), date(2026, 4, 15))


# ----- the command line ---------------------------------------------------------------------------
@pytest.fixture
def cli(year, monkeypatch):
    monkeypatch.setenv("CASEREVIEW_DATABASE_URL", year.service.settings.database_url)
    monkeypatch.setenv("CASEREVIEW_OUTBOX_DIR", str(year.service.settings.outbox_dir))
    monkeypatch.setenv("CASEREVIEW_CLOCK", NOW.isoformat())
    runner = CliRunner()

    def run(*args, expect=0):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == expect, (result.exit_code, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        return result

    return run


def test_cli_statutory(cli):
    default = cli("report", "statutory", "--json")
    assert default.stdout.strip() == json.dumps(EXPECTED_FY)
    assert "1 April 2025 to 31 March 2026" in default.stderr
    one_day = json.loads(cli("report", "statutory", "--from", "2025-03-31", "--to", "2025-03-31", "--json").stdout)
    assert one_day["applications"] == 1


@pytest.mark.parametrize("args", [("--from", "2025-02-30", "--to", "2025-03-31"),
                                  ("--from", "1/4/2025", "--to", "2026-03-31"),
                                  ("--from", "2026-04-01", "--to", "2026-03-31"), ("--from", "2025-04-01")])
def test_cli_statutory_refuses_bad_periods(cli, args):
    result = cli("report", "statutory", *args, "--json", expect=2)
    assert result.stdout == ""
    errors = json.loads(result.stderr)["errors"]
    assert errors and all(e["field"] in ("--from", "--to") and e["message"] for e in errors)


def test_cli_event_log(cli, tmp_path):
    xes_file, csv_file = tmp_path / "log.xes", tmp_path / "log.csv"
    summary = json.loads(cli("report", "events", "--out", str(xes_file), "--from", "2025-04-01",
                             "--to", "2026-03-31").stdout)
    assert summary["format"] == "xes" and summary["cases"] == 18
    traces = lxml.etree.parse(str(xes_file)).getroot().findall(f"{XES}trace")
    assert len(traces) == 18
    cli("report", "events", "--out", str(csv_file), "--from", "2025-04-01", "--to", "2026-03-31")
    rows = list(csv.DictReader(csv_file.open(newline="")))
    assert len(rows) == summary["events"] == sum(len(t.findall(f"{XES}event")) for t in traces)
    cli("report", "events", "--out", str(tmp_path / "bad.xes"), "--from", "2026-13-01", "--to", "2026-03-31",
        expect=2)


# ----- the web pages ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app(year):
    return make_app(year.service)


def client_for(app, email):
    client = app.test_client()
    sign_in(client, email)
    return client


def test_statutory_page_csv_and_json_agree(app, year):
    coordinator = client_for(app, "coordinator@demo.test")
    response = coordinator.get("/reports/statutory?from=2025-04-01&to=2026-03-31")
    assert response.status_code == 200
    html = page(response)
    shown = {span.get("data-figure"): int(span.text_content()) for span in html.cssselect("[data-figure]")}
    assert shown == EXPECTED_FY
    assert "1 April 2025 to 31 March 2026" in text_of(response)
    assert "Financial year 2025 to 2026" in text_of(response)
    as_json = json.loads(coordinator.get("/reports/statutory.json?from=2025-04-01&to=2026-03-31").data)
    assert as_json == {"from": "2025-04-01", "to": "2026-03-31", **shown}
    rows = list(csv.DictReader(io.StringIO(coordinator.get("/reports/statutory.csv?from=2025-04-01&to=2026-03-31")
                                           .get_data(as_text=True))))
    assert {row["figure"]: int(row["count"]) for row in rows} == shown
    assert {(row["from"], row["to"]) for row in rows} == {("2025-04-01", "2026-03-31")}
    # No dates: the last complete financial year by the service's clock.
    assert {s.get("data-figure"): int(s.text_content()) for s in page(coordinator.get("/reports/statutory"))
            .cssselect("[data-figure]")} == EXPECTED_FY


def test_statutory_page_shows_this_financial_year_so_far_beside_the_last_complete_one(app, year):
    from engine.reports.periods import financial_year_to_date, last_complete_financial_year

    coordinator = client_for(app, "coordinator@demo.test")
    today = year.service.now().date()
    so_far, last = financial_year_to_date(today), last_complete_financial_year(today)
    html = page(coordinator.get("/reports/statutory"))
    headings = [" ".join(th.text_content().split()) for th in html.cssselect("table.app-statutory thead th")]
    assert headings == ["Figure", f"Last financial year ({last.start.year} to {last.end.year})",
                        f"This financial year so far ({so_far.words})"]
    shown = {s.get("data-figure-so-far"): int(s.text_content()) for s in html.cssselect("[data-figure-so-far]")}
    expected = json.loads(coordinator.get(f"/reports/statutory.json?from={so_far.start}&to={so_far.end}").data)
    assert shown == {key: expected[key] for key in EXPECTED_FY}
    assert {s.get("data-figure"): int(s.text_content()) for s in html.cssselect("[data-figure]")} == EXPECTED_FY
    # Asked for this year so far, the page has one column and no repeat.
    alone = page(coordinator.get(f"/reports/statutory?from={so_far.start}&to={so_far.end}"))
    assert len(alone.cssselect("table.app-statutory thead th")) == 2 and not alone.cssselect("[data-figure-so-far]")


def test_each_figure_lists_its_cases(app, year):
    coordinator = client_for(app, "coordinator@demo.test")
    html = page(coordinator.get("/reports/statutory?from=2025-04-01&to=2026-03-31"))
    links = {a.get("href").split("?")[0].rsplit("/", 1)[1]: a.get("href")
             for a in html.cssselect("td[data-column=period] a")}
    assert set(links) == set(EXPECTED_FY)
    for key, href in links.items():
        listed = page(coordinator.get(href)).cssselect("tbody tr td:first-child a")
        assert len(listed) == EXPECTED_FY[key], key
    reviewed = page(coordinator.get(links["reviews_carried_out"])).cssselect("tbody tr td:first-child a")
    assert {a.text_content() for a in reviewed} == {year.refs[label] for label in
                                                    ("P1", "A1", "A5", "A6", "A7", "A9", "A11", "A13")}
    not_met = page(coordinator.get(links["threshold_not_met"])).cssselect("tbody tr td:first-child a")
    assert {a.text_content() for a in not_met} == {year.refs[label]
                                                   for label in ("P2", "A2", "A8", "A10", "A12", "A16")}


def test_who_may_see_reports(app, year):
    assert app.test_client().get("/reports/statutory").status_code == 302
    assert "/sign-in" in app.test_client().get("/reports/dashboard").headers["Location"]
    for email in ("police@demo.test", "chair@demo.test", "reviewer@demo.test"):
        client = client_for(app, email)
        for path in ("/reports", "/reports/statutory", "/reports/statutory.csv", "/reports/statutory.json",
                     "/reports/statutory/applications", "/reports/dashboard", "/reports/dashboard.csv",
                     "/reports/process", "/reports/process/events.xes", "/reports/process/events.csv"):
            assert client.get(path).status_code == 403, (email, path)
    admin = client_for(app, "admin@demo.test")
    statutory = admin.get("/reports/statutory")
    assert statutory.status_code == 200 and not page(statutory).cssselect(".govuk-summary-list__actions a")
    assert "Reports" in [a.text_content().strip() for a in page(statutory).cssselect(".govuk-service-navigation a")]
    for path in ("/reports/statutory/applications", "/reports/dashboard", "/reports/process"):
        assert admin.get(path).status_code == 403, path
    owner = client_for(app, "owner@demo.test")
    process = owner.get("/reports/process")
    assert process.status_code == 200 and not page(process).cssselect("a[href*='events.']")
    assert owner.get("/reports/process/events.xes").status_code == 403
    assert owner.get("/reports/statutory").status_code == 403


def test_invalid_period_on_the_page_keeps_what_was_typed(app):
    coordinator = client_for(app, "coordinator@demo.test")
    response = coordinator.get("/reports/statutory?from=2026-04-01&to=2025-13-40")
    assert response.status_code == 422
    html = page(response)
    assert [a.get("href") for a in html.cssselect(".govuk-error-summary a")] == ["#to"]
    assert html.cssselect("input#from")[0].get("value") == "2026-04-01"
    assert html.cssselect("input#to")[0].get("value") == "2025-13-40"
    assert html.cssselect("#to-error")
    backwards = coordinator.get("/reports/dashboard?from=2026-04-01&to=2025-04-01")
    assert backwards.status_code == 422 and "must be the same as or after" in text_of(backwards)
    assert coordinator.get("/reports/statutory.json?from=nope&to=2025-04-01").status_code == 422


def _table(html, table_id) -> dict[str, list[str]]:
    return {row.cssselect("th")[0].text_content().strip(): [c.text_content().strip() for c in row.cssselect("td")]
            for row in html.cssselect(f"#{table_id} tbody tr") if row.cssselect("th")}


def test_dashboard_tables(app, year):
    coordinator = client_for(app, "coordinator@demo.test")
    response = coordinator.get("/reports/dashboard?from=2025-04-01&to=2026-03-31")
    assert response.status_code == 200
    html = page(response)
    applications = _table(html, "applications-table")
    assert len(applications) == 12
    assert applications["April 2025"] == ["2", "2", "4"]  # victim A1, A6; third party A2, A3
    assert applications["March 2026"] == ["3", "0", "3"]  # A16, A18, A17
    assert applications["October 2025"] == ["0", "1", "1"]  # A11
    assert sum(int(v[-1]) for v in applications.values()) == EXPECTED_FY["applications"]
    decisions = _table(html, "decisions-table")
    assert decisions["April 2025"] == ["2", "2", "4"]  # met A1, A6; not met P2, A2
    assert decisions["December 2025"] == ["0", "0", "0"]
    assert sum(int(v[1]) for v in decisions.values()) == EXPECTED_FY["threshold_not_met"]

    timings = _table(html, "timings-table")
    to_decision = sorted(working_days_between(a, b) for a, b in DECISIONS_FY)
    to_panel = sorted(working_days_between(a, b) for a, b in PANELS_FY)
    assert timings["Receipt to threshold decision"] == [
        "15", str(len(DECISIONS_FY)), f"{statistics.median(to_decision):g}", str(to_decision[13]), str(to_decision[-1]),
        str(sum(1 for d in to_decision if d <= 15))]  # 90th percentile of 15: the 14th value
    assert timings["Threshold decision to panel"][1:5] == [
        "8", f"{statistics.median(to_panel):g}", str(to_panel[7]), str(to_panel[-1])]
    assert timings["Panel to outcome letter"][1:] == ["8", "0", "0", "0", "8"]  # written when the outcome is recorded

    actions = _table(html, "actions-table")  # on time, late, overdue, not yet due, stopped, total
    assert actions["Exampleshire Police"] == ["1", "0", "2", "0", "1", "4"]  # P1 on time; A1, A6 overdue; A7 stopped
    assert actions["Exampleton District Council"] == ["2", "1", "0", "0", "0", "3"]  # A6, A9 on time; A1 late
    later = _table(page(coordinator.get("/reports/dashboard?from=2025-04-01&to=2026-06-30")), "actions-table")
    assert later["Exampleshire Police"][3] == "1" and later["Exampleton District Council"][3] == "1"  # A13, A18 not yet due

    escalations = _table(html, "escalations-table")
    assert [v[0] for v in escalations.values()] == ["3", "1", "1", "1"]  # A9, A10, A12; A10; A9; A12

    charts = {holder.get("data-chart-table"): json.loads(holder.get("data-chart"))
              for holder in html.cssselect("[data-chart]")}
    assert charts["applications-table"]["labels"][0] == "April 2025"
    assert [s["data"][0] for s in charts["applications-table"]["series"]] == [2, 2]
    assert all(holder.get("hidden") is not None for holder in html.cssselect("[data-chart]"))  # drawn by JS only
    scripts = [s.get("src") for s in html.cssselect("script")]
    assert "/static/reports.js" in scripts and "/static/vendor/chart.js/chart.umd.min.js" in scripts
    assert not [s for s in html.cssselect("script") if not s.get("src")]  # no inline script

    exported = list(csv.DictReader(io.StringIO(coordinator.get("/reports/dashboard.csv?from=2025-04-01&to=2026-03-31")
                                               .get_data(as_text=True))))
    police = {r["column"]: r["value"] for r in exported if r["table"] == "actions" and r["row"] == "Exampleshire Police"}
    assert police["Overdue"] == "2" and police["Stopped (case closed)"] == "1"
    april = {r["column"]: r["value"] for r in exported if r["table"] == "applications" and r["row"] == "April 2025"}
    assert april == {"Victim": "2", "Third party": "2", "Total": "4"}


def test_working_days_for_many_pairs_match_one_by_one():
    pairs = [(a, b) for a, b in DECISIONS_FY + PANELS_FY] + [(date(2025, 12, 28), date(2025, 12, 20)),
                                                             (date(2025, 12, 24), date(2025, 12, 24))]
    assert working_days_for(pairs) == [working_days_between(a, b) for a, b in pairs]
    assert nearest_rank([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == 9


def test_process_page_shows_where_cases_wait(app, year):
    coordinator = client_for(app, "coordinator@demo.test")
    # A5 alone: histories 2 days after receipt, verified 3 days later, confirmed 16 days after that.
    response = coordinator.get("/reports/process?from=2025-05-12&to=2025-05-12")
    assert response.status_code == 200
    html = page(response)
    steps = _table(html, "steps-table")
    assert steps["Provide incident history"] == ["2", "2.0", "2.0", "2.0"]  # both agencies, from the request
    assert steps["Verify the incident history"] == ["1", "3.0", "3.0", "3.0"]
    assert steps["Confirm the threshold decision"] == ["1", "16.0", "16.0", "16.0"]
    medians = [float(values[1]) for values in steps.values()]
    assert medians == sorted(medians, reverse=True)  # the longest wait first
    stages = _table(html, "stages-table")
    assert stages["Gathering incident history"][:2] == ["1", "5.0"]
    assert stages["Threshold decision"][:2] == ["1", "16.0"]
    assert stages["Case review panel"][:2] == ["1", "18.0"]
    waiting = _table(html, "waiting-table")
    assert waiting["Delivering the action plan"][:2] == ["1", f"{(TODAY - date(2025, 6, 20)).days:.1f}"]
    links = [a.get("href") for a in html.cssselect("a[href*='/reports/process/events.']")]
    assert len(links) == 2 and all("from=2025-05-12" in link for link in links)

    whole = page(coordinator.get("/reports/process?from=2025-04-01&to=2026-03-31"))
    assert "Closed" not in _table(whole, "stages-table")  # a case does not wait in its final stage
    assert "Waiting for the victim's consent" in _table(whole, "stages-table")  # A3 (until withdrawn), A2, A11


def test_event_log_exports(app, year):
    coordinator = client_for(app, "coordinator@demo.test")
    xes = coordinator.get("/reports/process/events.xes?from=2025-04-01&to=2026-03-31")
    assert xes.status_code == 200 and "attachment" in xes.headers["Content-Disposition"]
    root = lxml.etree.fromstring(xes.data)
    assert root.tag == f"{XES}log"
    assert {e.get("prefix") for e in root.findall(f"{XES}extension")} == {"concept", "time", "org", "lifecycle"}
    traces = root.findall(f"{XES}trace")
    names = [t.find(f"{XES}string[@key='concept:name']").get("value") for t in traces]
    assert sorted(names) == sorted(year.refs[f"A{n}"] for n in range(1, 19))  # one trace per case received
    a6 = traces[names.index(year.refs["A6"])]
    activities = [e.find(f"{XES}string[@key='concept:name']").get("value") for e in a6.findall(f"{XES}event")]
    assert activities[0] == "Application received" and activities.count("Record the panel outcome") == 2
    stamps = [e.find(f"{XES}date[@key='time:timestamp']").get("value") for e in a6.findall(f"{XES}event")]
    assert stamps == sorted(stamps) and stamps[0].startswith("2025-04-14T10:00:00")
    resources = {e.find(f"{XES}string[@key='org:resource']").get("value") for e in a6.findall(f"{XES}event")}
    assert {"applicant", "chair@demo.test", "coordinator@demo.test", "system"} <= resources

    exported = coordinator.get("/reports/process/events.csv?from=2025-04-01&to=2026-03-31").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert list(rows[0]) == ["case:concept:name", "concept:name", "time:timestamp", "org:resource",
                             "lifecycle:transition"]
    assert len(rows) == sum(len(t.findall(f"{XES}event")) for t in traces)
    assert {r["case:concept:name"] for r in rows} == set(names)
    assert not [r for r in rows if r["concept:name"] == "Case viewed"]


def test_reports_index_lists_what_each_role_may_see(app):
    links = lambda email: {a.get("href") for a in page(client_for(app, email).get("/reports"))  # noqa: E731
                           .cssselect("main a")}
    assert links("coordinator@demo.test") >= {"/reports/statutory", "/reports/dashboard", "/reports/process"}
    assert links("admin@demo.test") == {"/reports/statutory"}
    assert links("owner@demo.test") == {"/reports/process"}


@pytest.mark.browser
def test_report_pages_in_a_browser_draw_charts_under_the_csp_and_meet_wcag(year, browser):
    """Chart.js draws from the data-* attributes with the CSP on; every report page passes axe."""
    from .browser_support import Findings, LiveServer, Visitor

    findings, server = Findings(), LiveServer(year.service).start()
    try:
        coordinator = Visitor(browser, server.url, findings).sign_in("coordinator@demo.test")
        coordinator.open("/reports/dashboard?from=2025-04-01&to=2026-03-31")
        page = coordinator.page
        page.wait_for_selector("[data-chart][data-ready=true]", state="attached")
        assert page.locator("[data-chart][data-ready=true] canvas[role=img]").count() == 4
        assert page.locator("[data-chart][hidden]").count() == 0
        for path in ("/reports", "/reports/statutory", "/reports/statutory/reviews_carried_out",
                     "/reports/process?from=2025-04-01&to=2026-03-31", "/reports/statutory?from=2026-04-01&to=x"):
            coordinator.open(path)
        coordinator.close()
    finally:
        server.stop()
    findings.assert_clean()


def test_a_panel_that_recommends_without_an_action_plan_counts_as_resulting_in_recommendations(service):
    from engine.scenarios import Walker, application

    start = service.now().date()
    outcomes = {"with recommendations only": (["Keep the victim informed weekly"], []), "with nothing": ([], [])}
    for name, (recommendations, actions) in outcomes.items():
        reference = service.apply(application(start, name=name))["reference"]
        walker = Walker(service, reference)
        walker.provide_histories()
        walker.verify(application(start)["incidents"])
        walker.confirm()
        walker.schedule_panel(start + timedelta(days=10))
        walker.panel_inputs()
        walker.complete("panel_outcome", {"attendees": ["Police"], "findings": "Seen.",
                                          "recommendations": recommendations, "actions": actions,
                                          "follow_up_working_days": 20})
    with service.sessions() as db:
        counted = statutory_figures(db, Period(start, start)).as_dict()
    assert counted["reviews_carried_out"] == 2
    assert counted["reviews_with_recommendations"] == 1
