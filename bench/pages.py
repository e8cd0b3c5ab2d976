"""Page benchmark: server time of the inbox (GET /tasks) and the case page (GET /cases/<ref>)
on PostgreSQL with 100,000 cases and 1,000,000 human_task rows.

    python -m bench.pages --json [--quick] [--database-url URL] [--schema NAME] [--reuse]
                                 [--requests N] [--budget S] [--load-only] [--drop]

1. Load. A fresh schema (`bench_pages`, or `bench_pages_quick` with --quick; dropped and
   recreated unless --reuse finds one loaded with the same shape) gets the real schema
   (`CaseReview.init()`), the demo accounts (`seed_accounts`) and 200 real cases (40 with
   --quick) driven through the public commands (`apply`, `complete`, `escalate`, `withdraw`,
   `fire_due_timers`) into every stage: these are the templates. The bulk is then copied from
   them with SQL (`INSERT ... SELECT` over generate_series): case_review, workflow_instance (the
   template's main instance state), action, outbox, audit_event (the template's events plus
   `case_viewed` rows), and 1,000,000 human_task rows on the open cases with a stage-consistent
   mix of task kinds, roles, agencies and due dates. Then VACUUM ANALYZE. --quick: 10k / 100k.
2. Measure. Flask's test client (the app from tests/web_helpers.make_app) signed in as the
   coordinator and as the police officer; each variant is requested `--requests` times (200; 50
   with --quick) after 5 warm-up requests, or for `--budget` seconds (60) if that comes first
   (20 requests at least). p50/p95 of the wall time of `client.get()`: the whole server side in
   process (session, user loader, queries, template, the case page's audit INSERT and COMMIT).
3. Explain. For the slowest inbox variant and the slowest case-page variant: EXPLAIN (ANALYZE,
   BUFFERS) of every SELECT one request sends, and a cProfile of one request.

The last line printed is one JSON object; docs/performance-pages.md explains the numbers.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import json
import os
import platform
import pstats
import random
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa
from sqlalchemy import event, text

from engine.clock import FixedClock
from engine.config import Settings
from engine.demo import seed_accounts
from engine.scenarios import Walker, application
from engine.service import CaseReview
from engine.versions import compiled
from tests.web_helpers import make_app, sign_in

DEFAULT_URL = os.environ.get("CASEREVIEW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TODAY = date(2026, 3, 2)  # a Monday: the clock of the benchmark app
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
PAST = TODAY - timedelta(days=56)  # the templates that need time to pass start here
PASSWORD = "bench-password-2026"
TARGET_P95_MS = 100.0
MIN_REQUESTS = 20
SPAN_DAYS = 3 * 365  # generated cases were received over the last three years
OLD_SHARE = 0.35  # the oldest 35 % of the generated cases use OLD_MIX, the rest NEW_MIX


@dataclass(frozen=True)
class Shape:
    cases: int
    tasks: int
    templates: int
    requests: int


FULL = Shape(cases=100_000, tasks=1_000_000, templates=200, requests=200)
QUICK = Shape(cases=10_000, tasks=100_000, templates=40, requests=50)

# Real cases made through the engine, by recipe; the weights share `templates` between them.
RECIPES = {  # recipe: (weight, needs the clock to move: made in the past phase)
    "closed_full": (8, True), "follow_up": (5, True), "chase": (5, True),
    "incident_history": (15, False), "consent": (5, False), "verify": (6, False), "confirm": (5, False),
    "safety_net": (4, False), "escalation": (3, False), "panel_schedule": (5, False), "panel_inputs": (6, False),
    "panel_outcome": (4, False), "actions": (16, False), "closed_not_met": (8, False), "withdrawn": (5, False),
}
# Generated cases: which template group (the stage of an open case, else its status) they copy.
OLD_MIX = {"closed": 0.80, "withdrawn": 0.12, "action_delivery": 0.05, "follow_up": 0.03}
NEW_MIX = {"consent": 0.04, "incident_history": 0.18, "threshold_decision": 0.08, "safety_net": 0.05,
           "panel": 0.15, "action_delivery": 0.25, "follow_up": 0.07, "closed": 0.15, "withdrawn": 0.03}
# How many ready tasks an open case at each stage holds, relative to the others (the 1,000,000
# rows are shared out in these proportions, times a random factor 0.5-1.5 per case) ...
STAGE_TASK_WEIGHT = {"consent": 1, "incident_history": 3, "threshold_decision": 1.5, "safety_net": 1.5,
                     "panel": 4, "action_delivery": 8, "follow_up": 3}
# ... and which user tasks (the BPMN ids) they are, by stage.
STAGE_KINDS = {
    "consent": {"victim_consent": 1.0},
    "incident_history": {"provide_incident_history": 0.9, "verify_incidents": 0.1},
    "threshold_decision": {"verify_incidents": 0.4, "confirm_threshold": 0.6},
    "safety_net": {"safety_net": 0.7, "decide_escalation": 0.2, "act_on_escalation": 0.1},
    "panel": {"schedule_panel": 0.15, "case_summary": 0.55, "impact_statement": 0.15, "panel_outcome": 0.15},
    "action_delivery": {"deliver_action": 0.85, "chase_action": 0.12, "decide_escalation": 0.03},
    "follow_up": {"follow_up": 0.3, "deliver_action": 0.6, "chase_action": 0.1},
}
NAMES = ("Jordan Lee", "Mary Jones", "Chris Patel", "Taylor Green", "Morgan Smith", "Alex Morgan", "Sam Khan",
         "Robin Evans", "Jamie Wilson", "Casey Brown", "Drew Taylor", "Avery Hughes")
REPORTED_TO = ("police", "housing", "police", "other", "council", "police", "housing")


def log(message: str) -> None:
    print(f"[bench.pages {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ----- database URL and schema -------------------------------------------------------------------
def split_url(url: str, schema: str) -> tuple[str, str, str]:
    """(server URL without search_path, schema, URL whose connections use that schema).
    A search_path in the given URL's `options` wins over --schema."""
    parsed = sa.make_url(url)
    options = parsed.query.get("options")
    if options:
        found = re.search(r"-c\s*search_path=([A-Za-z_][A-Za-z0-9_]*)", unquote(str(options)))
        if found:
            schema = found.group(1)
        parsed = parsed.difference_update_query(["options"])
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema) or schema in ("public", "pg_catalog", "information_schema"):
        raise SystemExit(f"refusing to use schema {schema!r}: give a dedicated one such as bench_pages")
    server = parsed.render_as_string(hide_password=False)
    joiner = "&" if "?" in server else "?"
    return server, schema, f"{server}{joiner}options=-csearch_path%3D{schema}"


def make_service(url: str, outbox: Path) -> tuple[CaseReview, FixedClock]:
    clock = FixedClock(NOW)
    service = CaseReview(Settings(database_url=url, outbox_dir=outbox, demo_password=PASSWORD), clock)
    return service, clock


# ----- templates: real cases through the engine --------------------------------------------------
def recipe_counts(total: int) -> dict[str, int]:
    weight_sum = sum(weight for weight, _past in RECIPES.values())
    counts = {name: max(1, round(total * weight / weight_sum)) for name, (weight, _past) in RECIPES.items()}
    return counts


def _actions(agencies: list[str], count: int, first_due: date) -> list[dict]:
    return [{"description": f"Agreed action {n + 1}", "agency": agencies[n % len(agencies)],
             "owner": f"Officer {n + 1}", "due": (first_due + timedelta(days=3 * n)).isoformat()}
            for n in range(count)]


class TemplateMaker:
    """Drives real cases through the engine, exactly as users and timers do."""

    def __init__(self, service: CaseReview, clock: FixedClock):
        self.service = service
        self.clock = clock
        self.made: list[tuple[str, str]] = []  # (recipe, reference)
        self.serial = 0

    def start(self, received: date, **kwargs) -> tuple[str, dict, Walker]:
        self.serial += 1
        n = self.serial
        kwargs.setdefault("reported_to", REPORTED_TO[n % len(REPORTED_TO)])
        app = application(received, name=NAMES[n % len(NAMES)], postcode=f"EX{n % 9 + 1} {n % 7 + 1}AB", **kwargs)
        reference = self.service.apply(app)["reference"]
        return reference, app, Walker(self.service, reference)

    def agencies(self, reference: str) -> list[str]:
        from engine.models import Case

        with self.service.sessions() as db:
            return list(db.scalar(sa.select(Case.agencies).where(Case.reference == reference)))

    def to_panel(self, walker: Walker, app: dict, received: date) -> list[str]:
        walker.provide_histories()
        walker.verify(app["incidents"])
        walker.confirm()
        agencies = self.agencies(walker.reference)
        walker.schedule_panel(received + timedelta(days=14), agencies=tuple(agencies))
        return agencies

    def past_phase(self, counts: dict[str, int]) -> None:
        """Cases that need time to pass: closed after the follow-up, waiting for the follow-up,
        an overdue action being chased. Started at PAST, then the clock moves 25 days."""
        self.clock.set(datetime.combine(PAST, datetime.min.time(), timezone.utc) + timedelta(hours=9))
        follow_ups = []
        for recipe in ("closed_full", "follow_up", "chase"):
            for n in range(counts[recipe]):
                reference, app, walker = self.start(PAST)
                agencies = self.to_panel(walker, app, PAST)
                walker.panel_inputs()
                if n % 3 == 0:
                    agencies = [*agencies, "fire"]
                if recipe == "chase":  # due within the 25 days: reminded, overdue, chased
                    walker.outcome(_actions(agencies, 2 + n % 3, PAST + timedelta(days=8)), follow_up_working_days=90)
                else:
                    walker.outcome(_actions(agencies, 1 + n % 3, PAST + timedelta(days=30)), follow_up_working_days=10)
                    walker.complete("deliver_action", {"status": "completed", "progress_note": "Done."})
                    follow_ups.append((recipe, reference))
                self.made.append((recipe, reference))
        self.clock.set(self.clock.now() + timedelta(days=25))
        for _round in range(5):  # a fired timer may arm another that is already due
            if not self.service.fire_due_timers(limit=100_000):
                break
        for recipe, reference in follow_ups:
            if recipe == "closed_full":
                Walker(self.service, reference).complete("follow_up", {"outcome": "close",
                                                                       "victim_feedback": "Much better now."})
        self.clock.set(NOW)

    def present_phase(self, counts: dict[str, int]) -> None:
        for recipe in RECIPES:
            if RECIPES[recipe][1]:
                continue
            for n in range(counts[recipe]):
                self.made.append((recipe, self.present(recipe, n)))

    def present(self, recipe: str, n: int) -> str:
        if recipe == "consent":
            return self.start(TODAY, third_party=True)[0]
        if recipe == "withdrawn":
            reference = self.start(TODAY)[0]
            self.service.withdraw(reference, reason="Moved house")
            return reference
        not_met = recipe in ("safety_net", "escalation", "closed_not_met")
        reference, app, walker = self.start(TODAY, incidents=1 if not_met else 3)
        if recipe == "incident_history":
            return reference
        walker.provide_histories()
        if recipe == "verify":
            return reference
        walker.verify(app["incidents"])
        if recipe == "confirm":
            return reference
        walker.confirm()
        if recipe == "escalation":
            self.service.escalate(reference, "The review missed reports made to the housing provider")
        if recipe == "closed_not_met":
            walker.complete("safety_net", {"further_actions": [{"description": "Mediation offer", "agency": "housing",
                                                                "owner": "Tenancy officer"}],
                                           "summary": "Mediation offered."})
        if not_met:
            return reference
        agencies = self.agencies(reference)
        walker.schedule_panel(TODAY + timedelta(days=14), agencies=tuple(agencies))
        if recipe == "panel_schedule":  # the summaries and the statement are waiting
            return reference
        walker.panel_inputs()
        if recipe in ("panel_inputs", "panel_outcome"):  # the chair records the outcome next
            return reference
        if n % 3 == 0:  # the panel gives one in three action plans a fire service action too
            agencies = [*agencies, "fire"]
        walker.outcome(_actions(agencies, 2 + n % 7, TODAY + timedelta(days=14)), follow_up_working_days=60)
        return reference


# ----- the bulk copy -------------------------------------------------------------------------------
def task_kinds(service: CaseReview) -> dict[str, dict[str, str]]:
    """Every user task of the shipped bundle: BPMN id -> title, role (lane), form, as the runtime
    writes them into human_task (engine/runtime.py describe_task)."""
    from engine.versions import BUNDLE, latest_version

    with service.sessions() as db:
        version = compiled(db, latest_version(db, BUNDLE).id)
    kinds = {}
    for spec, subprocess_specs in version.specs.values():
        for top in [spec, *subprocess_specs.values()]:
            for task_spec in top.task_specs.values():
                if getattr(task_spec, "manual", False) and getattr(task_spec, "bpmn_id", None):
                    properties = task_spec.extensions.get("properties", {})
                    kinds[task_spec.bpmn_id] = {"title": task_spec.bpmn_name or task_spec.bpmn_id,
                                                "role": task_spec.lane,
                                                "form": properties["formJsonSchemaFilename"]}
    return kinds


def _cumulative(weights: dict[str, float]) -> list[tuple[str, float, float]]:
    total = sum(weights.values())
    rows, low = [], 0.0
    for key, weight in weights.items():
        high = low + weight / total
        rows.append((key, low, high))
        low = high
    rows[-1] = (rows[-1][0], rows[-1][1], 1.0000001)
    return rows


def bulk_load(connection: sa.Connection, shape: Shape, kinds: dict[str, dict[str, str]]) -> dict[str, float]:
    """Copy the templates up to shape.cases cases and shape.tasks human_task rows (one transaction)."""
    timings: dict[str, float] = {}

    def step(name: str, sql: str, **params) -> None:
        started = time.perf_counter()
        connection.execute(text(sql), params)
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - started

    templates = connection.execute(text(
        "SELECT id, CASE WHEN status = 'open' THEN stage ELSE status END AS grp FROM case_review ORDER BY id")).all()
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for case_id, group in templates:
        groups[group].append(case_id)
    for mix in (OLD_MIX, NEW_MIX):
        missing = [group for group in mix if group not in groups]
        if missing:
            raise RuntimeError(f"no template case for {missing}; templates made: {dict(groups)}")
    generated = shape.cases - len(templates)
    id_base = max(case_id for case_id, _group in templates)
    old_upto = int(generated * OLD_SHARE)

    connection.execute(text("SELECT setseed(0.2026)"))
    connection.execute(text("CREATE TABLE bench_tmpl (grp text, k int, case_id int, PRIMARY KEY (grp, k))"))
    connection.execute(text("INSERT INTO bench_tmpl VALUES (:grp, :k, :case_id)"),
                       [{"grp": g, "k": k, "case_id": c} for g, ids in groups.items() for k, c in enumerate(ids)])
    connection.execute(text("CREATE TABLE bench_mix (era text, grp text, lo float8, hi float8)"))
    connection.execute(text("INSERT INTO bench_mix VALUES (:era, :grp, :lo, :hi)"),
                       [{"era": era, "grp": g, "lo": lo, "hi": hi}
                        for era, mix in (("old", OLD_MIX), ("new", NEW_MIX)) for g, lo, hi in _cumulative(mix)])

    # One row per generated case: its id, reference, received_on, template and day shift.
    step("plan", """
        CREATE TABLE bench_gen AS
        WITH gen AS (
            SELECT g, (CAST(:today AS date) - ((:generated - g)::bigint * :span / :generated)::int) AS received_on,
                   random() AS u, random() AS v, random() AS w
            FROM generate_series(1, :generated) g),
        picked AS (
            SELECT gen.*, m.grp FROM gen
            JOIN bench_mix m ON m.era = CASE WHEN gen.g <= :old_upto THEN 'old' ELSE 'new' END
                            AND gen.u >= m.lo AND gen.u < m.hi)
        SELECT p.g, :id_base + p.g AS case_id, p.received_on, p.grp, p.w,
               t.case_id AS template_id, p.received_on - c.received_on AS shift,
               'ASB-' || extract(year FROM p.received_on)::int || '-'
                 || lpad((1000 + row_number() OVER (PARTITION BY extract(year FROM p.received_on) ORDER BY p.g))::text,
                         5, '0') AS reference
        FROM picked p
        JOIN (SELECT grp, count(*) AS n FROM bench_tmpl GROUP BY grp) s ON s.grp = p.grp
        JOIN bench_tmpl t ON t.grp = p.grp AND t.k = least(floor(p.v * s.n)::int, s.n - 1)
        JOIN case_review c ON c.id = t.case_id""",
         today=TODAY, generated=generated, span=SPAN_DAYS, old_upto=old_upto, id_base=id_base)
    step("case_review", """
        INSERT INTO case_review (id, reference, process_version_id, status, stage, route, applicant_name,
                                 applicant_email, victim_name, postcode, agencies, received_on, threshold,
                                 application, decided_on, closed_at, lock_version, created_at, updated_at)
        SELECT b.case_id, b.reference, c.process_version_id, c.status, c.stage, c.route, c.applicant_name,
               c.applicant_email, c.victim_name,
               'EX' || (b.g % 40 + 1) || ' ' || (b.g % 9 + 1) || chr(65 + b.g % 26) || chr(65 + (b.g / 26) % 26),
               c.agencies, b.received_on, c.threshold, c.application, c.decided_on + b.shift,
               c.closed_at + b.shift * interval '1 day', c.lock_version,
               c.created_at + b.shift * interval '1 day', c.updated_at + b.shift * interval '1 day'
        FROM bench_gen b JOIN case_review c ON c.id = b.template_id ORDER BY b.case_id""")
    step("case_review", "SELECT setval(pg_get_serial_sequence('case_review', 'id'), (SELECT max(id) FROM case_review))")
    step("case_agency", """
        INSERT INTO case_agency (case_id, agency)
        SELECT b.case_id, a.agency FROM bench_gen b JOIN case_agency a ON a.case_id = b.template_id""")
    # The pages never read workflow_instance: each generated case gets a copy of its template's
    # main instance (the real serialized state), not of its action_delivery sub-instances.
    step("workflow_instance", """
        INSERT INTO workflow_instance (case_id, process_id, status, state, steps, created_at, updated_at)
        SELECT b.case_id, w.process_id, w.status, w.state, w.steps, w.created_at + b.shift * interval '1 day',
               w.updated_at + b.shift * interval '1 day'
        FROM bench_gen b JOIN workflow_instance w ON w.case_id = b.template_id AND w.process_id = 'case_review'
        ORDER BY b.case_id""")
    step("action", """
        INSERT INTO action (id, case_id, description, agency, owner, due, status, last_note, updated_at)
        SELECT md5(b.case_id || ':' || a.id), b.case_id, a.description, a.agency, a.owner, a.due + b.shift,
               a.status, a.last_note, a.updated_at + b.shift * interval '1 day'
        FROM bench_gen b JOIN action a ON a.case_id = b.template_id
        ORDER BY a.updated_at + b.shift * interval '1 day'""")
    step("outbox", """
        INSERT INTO outbox (case_id, template, recipient, recipient_role, subject, body, created_at, sent_at,
                            attempts, last_error)
        SELECT b.case_id, o.template, o.recipient, o.recipient_role, o.subject, o.body,
               o.created_at + b.shift * interval '1 day', o.created_at + b.shift * interval '1 day', 1, NULL
        FROM bench_gen b JOIN outbox o ON o.case_id = b.template_id
        ORDER BY o.created_at + b.shift * interval '1 day', b.case_id""")
    # The audit trail: the template's events, then case_viewed rows (every case page view writes
    # one), 0-119 per case, skewed low (mean ~30), at random times since the case was received.
    # Inserted in time order, as they are written, so one case's rows are spread over the table.
    step("audit_event", """
        INSERT INTO audit_event (at, actor, event, case_id, stage_before, stage_after, detail)
        SELECT at, actor, event, case_id, stage_before, stage_after, detail FROM (
            SELECT e.at + b.shift * interval '1 day' AS at, e.actor, e.event, b.case_id, e.stage_before,
                   e.stage_after, e.detail
            FROM bench_gen b JOIN audit_event e ON e.case_id = b.template_id
            UNION ALL
            SELECT b.received_on + interval '9 hours'
                     + (random() * greatest(CAST(:today AS date) - b.received_on, 1)) * interval '1 day',
                   (ARRAY['coordinator@demo.test', 'coordinator@demo.test', 'chair@demo.test',
                          'police@demo.test', 'council@demo.test', 'reviewer@demo.test'])[1 + floor(random() * 6)::int],
                   'case_viewed', b.case_id, c.stage, c.stage, '{"page": "case"}'::json
            FROM bench_gen b JOIN case_review c ON c.id = b.case_id
            CROSS JOIN LATERAL generate_series(1, floor(b.w * random() * 120)::int) v) rows
        ORDER BY at""", today=TODAY)

    # human_task: shape.tasks rows in all (the templates' real ready tasks included), on open
    # generated cases picked with probability ~ STAGE_TASK_WEIGHT x (0.5..1.5), each a user task
    # of that stage (STAGE_KINDS), partner tasks for one of the case's agencies.
    real_tasks = connection.execute(text("SELECT count(*) FROM human_task")).scalar_one()
    connection.execute(text("CREATE TABLE bench_stage_weight (stage text PRIMARY KEY, weight float8)"))
    connection.execute(text("INSERT INTO bench_stage_weight VALUES (:stage, :weight)"),
                       [{"stage": s, "weight": w} for s, w in STAGE_TASK_WEIGHT.items()])
    connection.execute(text("CREATE TABLE bench_kind (stage text, hi float8, name text, title text, role text, "
                            "form text, PRIMARY KEY (stage, hi))"))
    connection.execute(text("INSERT INTO bench_kind VALUES (:stage, :hi, :name, :title, :role, :form)"),
                       [{"stage": stage, "hi": hi, "name": name, **kinds[name]}
                        for stage, weights in STAGE_KINDS.items() for name, _lo, hi in _cumulative(weights)])
    step("human_task", """
        CREATE TABLE bench_open AS
        WITH open_cases AS (
            SELECT b.case_id, c.stage, c.agencies, json_array_length(c.agencies) AS n_agencies, w.instance_id,
                   sw.weight * (0.5 + random()) AS weight
            FROM bench_gen b JOIN case_review c ON c.id = b.case_id
            JOIN (SELECT case_id, min(id) AS instance_id FROM workflow_instance GROUP BY case_id) w
              ON w.case_id = b.case_id
            JOIN bench_stage_weight sw ON sw.stage = c.stage
            WHERE c.status = 'open')
        SELECT *, sum(weight) OVER (ORDER BY case_id) / sum(weight) OVER () AS cum FROM open_cases""")
    step("human_task", "CREATE INDEX ON bench_open (cum)")
    step("human_task", "ANALYZE bench_open")
    step("human_task", """
        INSERT INTO human_task (id, case_id, instance_id, name, title, role, agency, form, due, assignee, created_at)
        SELECT md5('bench-pages-task-' || r.k)::uuid::text, o.case_id, o.instance_id, kd.name, kd.title, kd.role,
               ag.agency, kd.form,
               CASE WHEN r.d < 0.03 THEN NULL                                       -- 3 % without a due date
                    WHEN r.d < 0.18 THEN CAST(:today AS date) - (1 + floor(r.e * 60))::int   -- 15 % overdue
                    WHEN r.d < 0.28 THEN CAST(:today AS date) + floor(r.e * 4)::int          -- 10 % due within 3 days
                    ELSE CAST(:today AS date) + (4 + floor(r.e * 57))::int END,              -- the rest: 4-60 days
               CASE WHEN kd.role <> 'applicant' AND r.f < 0.15
                    THEN coalesce(ag.agency, kd.role) || '@demo.test' END,         -- 15 % claimed
               (CAST(:today AS date) - floor(r.e * 90)::int) + interval '9 hours' + r.f * interval '8 hours'
        FROM (SELECT k, random() * 0.9999 AS pc, random() AS pk, random() AS a, random() AS d, random() AS e,
                     random() AS f
              FROM generate_series(1, :count) k) r
        CROSS JOIN LATERAL (SELECT * FROM bench_open o WHERE o.cum >= r.pc ORDER BY o.cum LIMIT 1) o
        CROSS JOIN LATERAL (SELECT * FROM bench_kind kd WHERE kd.stage = o.stage AND kd.hi > r.pk
                            ORDER BY kd.hi LIMIT 1) kd
        CROSS JOIN LATERAL (SELECT CASE WHEN kd.role = 'partner'
                                        THEN o.agencies ->> least(floor(r.a * o.n_agencies)::int, o.n_agencies - 1)
                                   END AS agency) ag""",
         today=TODAY, count=shape.tasks - real_tasks)
    for table in ("bench_gen", "bench_tmpl", "bench_mix", "bench_open", "bench_kind", "bench_stage_weight"):
        connection.execute(text(f"DROP TABLE {table}"))
    return {name: round(seconds, 1) for name, seconds in timings.items()}


def load(server_url: str, schema: str, url: str, shape: Shape, workdir: Path) -> dict[str, Any]:
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    started = time.perf_counter()
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    service, clock = make_service(url, workdir / "outbox")
    try:
        service.init()
        seed_accounts(service)
        counts = recipe_counts(shape.templates)
        maker = TemplateMaker(service, clock)
        maker.past_phase(counts)
        maker.present_phase(counts)
        templates_seconds = time.perf_counter() - started
        log(f"{len(maker.made)} template cases through the engine in {templates_seconds:.1f} s; bulk copy next")
        kinds = task_kinds(service)
        bulk_started = time.perf_counter()
        with service.engine.begin() as connection:
            steps = bulk_load(connection, shape, kinds)
        bulk_seconds = time.perf_counter() - bulk_started
        log(f"bulk copy in {bulk_seconds:.1f} s {steps}; VACUUM ANALYZE next")
    finally:
        service.engine.dispose()
    analyze_started = time.perf_counter()
    vacuum = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with vacuum.connect() as connection:
        connection.execute(text("VACUUM (ANALYZE)"))
    vacuum.dispose()
    analyze_seconds = time.perf_counter() - analyze_started
    info = {"seconds": round(time.perf_counter() - started, 1), "templates_seconds": round(templates_seconds, 1),
            "bulk_seconds": round(bulk_seconds, 1), "bulk_steps_seconds": steps,
            "vacuum_analyze_seconds": round(analyze_seconds, 1), "template_recipes": counts}
    with admin.connect() as connection:
        connection.execute(text(f'CREATE TABLE "{schema}".bench_pages_meta (shape json, load json)'))
        connection.execute(text(f'INSERT INTO "{schema}".bench_pages_meta VALUES (:shape, :load)'),
                           {"shape": json.dumps(asdict(shape)), "load": json.dumps(info)})
    admin.dispose()
    return info


def previous_load(server_url: str, schema: str, shape: Shape) -> dict[str, Any] | None:
    """The load info of a schema this benchmark already filled with the same shape, if any."""
    admin = sa.create_engine(server_url)
    try:
        with admin.connect() as connection:
            exists = connection.execute(text("SELECT to_regclass(:name)"),
                                        {"name": f'"{schema}".bench_pages_meta'}).scalar_one()
            if exists is None:
                return None
            row = connection.execute(text(f'SELECT shape, load FROM "{schema}".bench_pages_meta')).first()
    finally:
        admin.dispose()
    if row is None or row[0]["cases"] != shape.cases or row[0]["tasks"] != shape.tasks:
        return None
    return {**row[1], "reused": True}


def data_shape(engine: sa.Engine, schema: str) -> dict[str, Any]:
    with engine.connect() as c:
        one = lambda sql: c.execute(text(sql)).scalar_one()  # noqa: E731
        rows = {table: one(f"SELECT count(*) FROM {table}") for table in
                ("case_review", "workflow_instance", "human_task", "action", "audit_event", "outbox", "timer")}
        status = dict(c.execute(text("SELECT status, count(*) FROM case_review GROUP BY 1 ORDER BY 2 DESC")).all())
        stages = dict(c.execute(text("SELECT stage, count(*) FROM case_review WHERE status = 'open' "
                                     "GROUP BY 1 ORDER BY 2 DESC")).all())
        roles = {f"{role}{'/' + agency if agency else ''}": n for role, agency, n in c.execute(text(
            "SELECT role, agency, count(*) FROM human_task GROUP BY 1, 2 ORDER BY 3 DESC")).all()}
        per_case = c.execute(text(
            "SELECT percentile_disc(ARRAY[0.5, 0.95, 1.0]) WITHIN GROUP (ORDER BY n) FROM "
            "(SELECT count(*) AS n FROM human_task GROUP BY case_id) t")).scalar_one()
        history = c.execute(text(
            "SELECT percentile_disc(ARRAY[0.5, 0.95, 1.0]) WITHIN GROUP (ORDER BY n) FROM "
            "(SELECT count(*) AS n FROM audit_event WHERE case_id IS NOT NULL GROUP BY case_id) t")).scalar_one()
        due = c.execute(text(
            "SELECT round(avg((due IS NULL)::int), 3), round(avg((due < :today)::int), 3), "
            "round(avg((due >= :today AND due <= :soon)::int), 3), round(avg((assignee IS NOT NULL)::int), 3) "
            "FROM human_task"), {"today": TODAY, "soon": TODAY + timedelta(days=3)}).one()
        size = one(f"SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                   f"ON n.oid = c.relnamespace WHERE n.nspname = '{schema}' AND c.relkind = 'r'")
        inboxes = {
            "coordinator": one("SELECT count(*) FROM human_task t JOIN case_review c ON c.id = t.case_id "
                               "WHERE c.status = 'open' AND t.role = 'coordinator'"),
            "partner/police": one("SELECT count(*) FROM human_task t JOIN case_review c ON c.id = t.case_id "
                                  "WHERE c.status = 'open' AND t.role = 'partner' AND t.agency = 'police'"),
        }
    return {"rows": rows, "case_status": status, "open_case_stages": stages, "human_task_by_role": roles,
            "tasks_per_case_with_tasks_p50_p95_max": per_case, "audit_rows_per_case_p50_p95_max": history,
            "human_task_share_no_due_overdue_due_soon_claimed": [float(x) for x in due],
            "inbox_rows": inboxes, "schema_bytes": int(size), "today": TODAY.isoformat()}


# ----- measuring ---------------------------------------------------------------------------------
class SqlTimer:
    """Wall time and count of the statements the app sends (cursor execute, results included:
    psycopg fetches them during execute); `capture` keeps them for EXPLAIN."""

    def __init__(self, engine: sa.Engine):
        self.seconds = 0.0
        self.count = 0
        self.capture: list[tuple[str, Any]] | None = None
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, _cursor, _statement, _parameters, _context, _executemany):
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def _after(self, conn, _cursor, statement, parameters, _context, _executemany):
        self.seconds += time.perf_counter() - conn.info["bench_started"].pop()
        self.count += 1
        if self.capture is not None:
            self.capture.append((statement, parameters))

    def reset(self) -> None:
        self.seconds, self.count = 0.0, 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Variant:
    page: str  # inbox or case
    user: str  # coordinator or partner
    name: str
    paths: list[str]  # requested in turn; one path repeated for the inbox


TOTAL = re.compile(r"(More than )?([\d,]+) tasks?")  # the inbox table's caption


def measure(client, variant: Variant, timer: SqlTimer, requests: int, warmup: int,
            budget: float = 60.0) -> dict[str, Any]:
    """`requests` requests after `warmup`; a variant slower than the target by far stops after
    `budget` seconds (at least MIN_REQUESTS requests): its p95 is then over fewer requests."""
    paths = variant.paths
    for n in range(warmup):
        response = client.get(paths[(len(paths) - 1 - n) % len(paths)])  # case pages: not the measured ones
        if response.status_code != 200:
            raise RuntimeError(f"{variant.user} GET {paths[0]}: {response.status_code}")
    wall, sql, queries, sizes = [], [], [], []
    load_before = os.getloadavg()[0]
    total = None
    measuring_started = time.perf_counter()
    for n in range(requests):
        if n >= MIN_REQUESTS and time.perf_counter() - measuring_started > budget:
            break
        path = paths[n % len(paths)]
        timer.reset()
        started = time.perf_counter()
        response = client.get(path)
        wall.append(time.perf_counter() - started)
        sql.append(timer.seconds)
        queries.append(timer.count)
        body = response.get_data()
        sizes.append(len(body))
        if response.status_code != 200:
            raise RuntimeError(f"{variant.user} GET {path}: {response.status_code}")
        if total is None and variant.page == "inbox":
            found = TOTAL.search(body.decode())
            total = (found.group(1) or "") + found.group(2) if found else "0"
    load_after = os.getloadavg()[0]
    ms = lambda seconds: round(seconds * 1000, 1)  # noqa: E731
    return {"page": variant.page, "user": variant.user, "variant": variant.name,
            "path": paths[0] if len(paths) == 1 else f"/cases/<{len(paths)} references>",
            "requests": len(wall), "p50_ms": ms(percentile(wall, 0.5)), "p95_ms": ms(percentile(wall, 0.95)),
            "mean_ms": ms(sum(wall) / len(wall)), "max_ms": ms(max(wall)),
            "sql_p50_ms": ms(percentile(sql, 0.5)), "sql_p95_ms": ms(percentile(sql, 0.95)),
            "statements": round(sum(queries) / len(queries), 1), "html_kb": round(sum(sizes) / len(sizes) / 1024, 1),
            "load_average_1min": [round(load_before, 1), round(load_after, 1)],
            **({"tasks_total": total} if variant.page == "inbox" else {})}


def variants(engine: sa.Engine, requests: int, warmup: int) -> list[Variant]:
    rng = random.Random(2026)
    with engine.connect() as c:
        last = {}
        for user, where in (("coordinator", "t.role = 'coordinator'"),
                            ("partner", "t.role = 'partner' AND t.agency = 'police'")):
            count = c.execute(text(f"SELECT count(*) FROM human_task t JOIN case_review c ON c.id = t.case_id "
                                   f"WHERE c.status = 'open' AND {where}")).scalar_one()
            last[user] = max(1, -(-count // 25))
        open_cases = list(c.execute(text("SELECT reference FROM case_review WHERE status = 'open' ORDER BY id"))
                          .scalars())
        wanted = requests + warmup
        long_histories = list(c.execute(text(
            "SELECT c.reference FROM case_review c JOIN (SELECT case_id, count(*) AS n FROM audit_event "
            "GROUP BY case_id) a ON a.case_id = c.id WHERE c.status = 'open' ORDER BY a.n DESC, c.id LIMIT :n"),
            {"n": wanted}).scalars())
    coordinator_refs = rng.sample(open_cases, min(wanted, len(open_cases)))
    partner_refs = rng.sample(open_cases, min(wanted, len(open_cases)))  # police is involved in every case
    inbox = [
        ("coordinator", "due (default)", "/tasks"),
        ("coordinator", "sort=case", "/tasks?sort=case"),
        ("coordinator", "sort=task", "/tasks?sort=task"),
        ("coordinator", "stage=action_delivery", "/tasks?stage=action_delivery"),
        ("coordinator", "agency=police", "/tasks?agency=police"),
        ("coordinator", "overdue", "/tasks?overdue=yes"),
        ("coordinator", "stage=panel+overdue+sort=task", "/tasks?stage=panel&overdue=yes&sort=task"),
        ("coordinator", "page=100", "/tasks?page=100"),
        ("coordinator", f"last page ({last['coordinator']})", f"/tasks?page={last['coordinator']}"),
        ("partner", "due (default)", "/tasks"),
        ("partner", "sort=case", "/tasks?sort=case"),
        ("partner", "sort=task", "/tasks?sort=task"),
        ("partner", "stage=action_delivery", "/tasks?stage=action_delivery"),
        ("partner", "overdue", "/tasks?overdue=yes"),
        ("partner", f"last page ({last['partner']})", f"/tasks?page={last['partner']}"),
    ]
    result = [Variant("inbox", user, name, [path]) for user, name, path in inbox]
    result.append(Variant("case", "coordinator", "open case, random", [f"/cases/{r}" for r in coordinator_refs]))
    result.append(Variant("case", "partner", "open case, random", [f"/cases/{r}" for r in partner_refs]))
    rng.shuffle(long_histories)
    result.append(Variant("case", "coordinator", "open case, longest histories",
                          [f"/cases/{r}" for r in long_histories]))
    return result


def clients(service: CaseReview) -> dict[str, Any]:
    app = make_app(service, PERMANENT_SESSION_LIFETIME=timedelta(hours=12))
    signed_in = {}
    for user, email in (("coordinator", "coordinator@demo.test"), ("partner", "police@demo.test")):
        client = app.test_client()
        sign_in(client, email, PASSWORD)
        signed_in[user] = client
    return signed_in


def measure_all(service: CaseReview, timer: SqlTimer, all_variants: list[Variant], requests: int,
                warmup: int, budget: float) -> list[dict[str, Any]]:
    signed_in = clients(service)
    results = []
    for variant in all_variants:
        result = measure(signed_in[variant.user], variant, timer, requests, warmup, budget)
        log(f"{variant.page:5} {variant.user:11} {variant.name:32} p50 {result['p50_ms']:7.1f} ms  "
            f"p95 {result['p95_ms']:7.1f} ms  (SQL p50 {result['sql_p50_ms']} ms, {result['statements']} statements)")
        results.append(result)
    return results


# ----- where the time goes -----------------------------------------------------------------------
def _package(filename: str) -> str:
    for marker, label in (("/sqlalchemy/", "SQLAlchemy"), ("/psycopg", "psycopg (incl. waiting for the server)"),
                          ("/jinja2/", "Jinja2"), ("/govuk_frontend_jinja/", "Jinja2"), ("/markupsafe/", "Jinja2"),
                          ("/werkzeug/", "Flask/Werkzeug"), ("/flask", "Flask/Werkzeug"),
                          ("/itsdangerous/", "Flask/Werkzeug"),
                          ("/engine/", "engine (this project)"), ("/web/", "web (this project)")):
        if marker in filename:
            return label
    if filename.startswith("<template>") or filename.endswith(".html"):
        return "Jinja2"
    if filename == "~":
        return "C functions (socket reads, dict, str ...)"
    return "other Python"


# function name -> (a piece of its file's path, label): cumulative times worth reading in a profile
PROFILE_POINTS = {
    "load_user": ("web/auth", "web.auth.load_user (Flask-Login user loader, one SELECT)"),
    "inbox": ("engine/queries", "engine.queries.inbox (count + page)"),
    "case_view": ("engine/queries", "engine.queries.case_view (case, actions, history, letters)"),
    "render_template": ("flask/templating", "flask.render_template (Jinja2)"),
    "commit": ("sqlalchemy/orm/session", "Session.commit (audit row INSERT + COMMIT)"),
    "_visible_case": ("web/cases", "web.cases._visible_case"),
}


def explain(engine: sa.Engine, statements: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    plans = []
    with engine.connect() as c:
        for statement, parameters in statements:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            rows = c.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).scalars().all()
            execution = next((float(r.split(":")[1].split()[0]) for r in rows if r.startswith("Execution Time")), None)
            plans.append({"sql": " ".join(statement.split())[:400], "parameters": {k: str(v) for k, v in
                                                                                   (parameters or {}).items()},
                          "execution_ms": execution, "plan": rows})
        c.rollback()
    return sorted(plans, key=lambda p: -(p["execution_ms"] or 0))


def where_time_goes(service: CaseReview, timer: SqlTimer, variant: Variant) -> dict[str, Any]:
    client = clients(service)[variant.user]
    path = variant.paths[-1]
    for _ in range(3):
        client.get(path)
    timer.capture = []
    timer.reset()
    started = time.perf_counter()
    client.get(path)
    wall = time.perf_counter() - started
    captured, timer.capture = timer.capture, None
    sql = timer.seconds
    profiler = cProfile.Profile()
    profiler.enable()
    client.get(path)
    profiler.disable()
    stats = pstats.Stats(profiler)
    by_package: collections.Counter = collections.Counter()
    for (filename, _line, _name), (_cc, _nc, self_time, _cum, _callers) in stats.stats.items():
        by_package[_package(filename)] += self_time
    total = sum(by_package.values())
    top = sorted(stats.stats.items(), key=lambda item: -item[1][3])
    cumulative = {}
    for (filename, line, name), (_cc, ncalls, _self, cum, _callers) in top:
        if filename == "~" and not name.startswith("<method 'execute'"):
            continue
        cumulative[f"{Path(filename).name}:{line} {name}"] = {"calls": ncalls, "cum_ms": round(cum * 1000, 1)}
        if len(cumulative) == 25:
            break
    selected: dict[str, float] = {}
    for (filename, _line, name), (_cc, _nc, _self, cum, _callers) in stats.stats.items():
        label = PROFILE_POINTS.get(name)
        if label and label[0] in filename:
            selected[label[1]] = max(selected.get(label[1], 0.0), round(cum * 1000, 1))
    return {"variant": f"{variant.page} / {variant.user} / {variant.name}", "path": path,
            "wall_ms": round(wall * 1000, 1), "sql_ms": round(sql * 1000, 1), "statements": len(captured),
            "explain": explain(service.engine, captured),
            "cprofile_ms": round(total * 1000, 1),
            "cprofile_self_time_share": {label: round(value / total, 3)
                                         for label, value in sorted(by_package.items(), key=lambda i: -i[1])},
            "cprofile_points_ms": selected, "cprofile_top_cumulative": cumulative}


def machine(engine: sa.Engine) -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with engine.connect() as c:
        server = c.execute(text("SHOW server_version")).scalar_one()
        settings = {name: c.execute(text(f"SHOW {name}")).scalar_one()
                    for name in ("shared_buffers", "work_mem", "effective_cache_size", "random_page_cost",
                                 "max_parallel_workers_per_gather", "synchronous_commit", "jit")}
    return {"python": platform.python_version(), "cpu": cpu, "cpus": os.cpu_count(), "postgresql": server,
            "postgresql_settings": settings, "sqlalchemy": sa.__version__,
            "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}


def run(args: argparse.Namespace) -> dict[str, Any]:
    shape = QUICK if args.quick else FULL
    requests = args.requests or shape.requests
    warmup = 5
    server_url, schema, url = split_url(args.database_url or DEFAULT_URL,
                                        args.schema or ("bench_pages_quick" if args.quick else "bench_pages"))
    with tempfile.TemporaryDirectory(prefix="casereview-bench-pages-") as tmp:
        info = previous_load(server_url, schema, shape) if args.reuse else None
        if info is None:
            log(f"loading {shape.cases:,} cases and {shape.tasks:,} human_task rows into schema {schema}")
            info = load(server_url, schema, url, shape, Path(tmp))
        else:
            log(f"reusing schema {schema} (loaded in {info['seconds']} s)")
        if args.load_only:
            engine = sa.create_engine(url)
            try:
                return {"mode": "quick" if args.quick else "full", "schema": schema,
                        "shape": data_shape(engine, schema), "load": info}
            finally:
                engine.dispose()
        service, _clock = make_service(url, Path(tmp) / "outbox")
        try:
            timer = SqlTimer(service.engine)
            result: dict[str, Any] = {"mode": "quick" if args.quick else "full", "schema": schema,
                                      "shape": data_shape(service.engine, schema), "load": info,
                                      "requests_per_variant": requests, "warmup_per_variant": warmup,
                                      "target_p95_ms": TARGET_P95_MS}
            all_variants = variants(service.engine, requests, warmup)
            pages = measure_all(service, timer, all_variants, requests, warmup, args.budget)
            result["pages"] = pages
            result["meets_target"] = {page: all(p["p95_ms"] < TARGET_P95_MS for p in pages if p["page"] == page)
                                      for page in ("inbox", "case")}
            result["slowest"] = {}
            for page in ("inbox", "case"):
                slowest = max((p for p in pages if p["page"] == page), key=lambda p: p["p95_ms"])
                variant = next(v for v in all_variants if v.page == page and v.user == slowest["user"]
                               and v.name == slowest["variant"])
                log(f"explaining and profiling {page} / {variant.user} / {variant.name}")
                result["slowest"][page] = where_time_goes(service, timer, variant)
            result["machine"] = machine(service.engine)
        finally:
            service.engine.dispose()
    if args.drop:
        admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return result


def human(result: dict[str, Any]) -> str:
    shape = result["shape"]["rows"]
    lines = [f"{shape['case_review']:,} cases, {shape['human_task']:,} human_task rows, "
             f"{shape['audit_event']:,} audit rows; load {result['load']['seconds']} s; "
             f"{result['requests_per_variant']} requests per variant; target p95 < {TARGET_P95_MS:.0f} ms"]
    for p in result["pages"]:
        lines.append(f"  {p['page']:5} {p['user']:11} {p['variant']:32} "
                     f"p50 {p['p50_ms']:7.1f}  p95 {p['p95_ms']:7.1f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pages", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object (the last line)")
    parser.add_argument("--quick", action="store_true", help="10,000 cases and 100,000 human_task rows, 50 requests")
    parser.add_argument("--database-url", help=f"PostgreSQL server and database (default {DEFAULT_URL})")
    parser.add_argument("--schema", help="schema to drop, fill and measure (default bench_pages; bench_pages_quick "
                                         "with --quick, so the two loads live side by side)")
    parser.add_argument("--reuse", action="store_true", help="keep the schema if a previous run loaded the same shape")
    parser.add_argument("--requests", type=int, help="requests per variant (default 200; 50 with --quick)")
    parser.add_argument("--budget", type=float, default=60.0,
                        help=f"seconds per variant: a slow one stops there (after at least {MIN_REQUESTS} requests)")
    parser.add_argument("--load-only", action="store_true", help="load (or with --reuse keep) the data, then stop")
    parser.add_argument("--drop", action="store_true", help="drop the schema at the end (default: keep it)")
    args = parser.parse_args(argv)
    if not (args.database_url or DEFAULT_URL).startswith("postgresql"):
        raise SystemExit("bench.pages needs PostgreSQL")
    result = run(args)
    if "pages" in result:
        with contextlib.suppress(Exception):  # the summary must never cost the results
            print(human(result), file=sys.stderr, flush=True)
    print(json.dumps(result, default=str) if args.json else json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
