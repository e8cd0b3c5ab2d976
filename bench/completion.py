"""Completion benchmark: what one task completion costs in a long case, next to bare SpiffWorkflow.

    python -m bench.completion --json [--quick] [--profile] [--database-url URL]

Builds ONE long case through the real shipped process and the public commands (application,
histories, verification, threshold, panel, an outcome with many actions across agencies, weekly
progress updates, extensions, reminders and overdue chases fired by moving the FixedClock, a
reconvened panel with more actions, and finally the closure), on a temporary SQLite file
unless --database-url says otherwise. Then reports:

- casereview_ms: median wall time of CaseReview.complete() for an action progress update
  (`deliver_action`, status in_progress), database and commit included;
- floor_ms: median wall time of the bare SpiffWorkflow round trip for the same completion on
  the same stored state: standard BpmnWorkflowSerializer (SPIFF_CONFIG, spec included) ->
  deserialize_json -> task.data.update(data); task.run() -> do_engine_steps() -> serialize_json.
  No database, SpiffWorkflow's own PythonScriptEngine;
- ratio = casereview_ms / floor_ms (same completions, measured back to back);
- growth = casereview_ms in the window at ~300 completed tasks / in the window at ~10.

The last line printed is one JSON object. docs/performance.md explains every number.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import functools
import gc
import importlib
import importlib.metadata
import json
import os
import platform
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import func, select
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from engine.clock import FixedClock, clock_in_use
from engine.config import Settings
from engine.demo import seed_accounts
from engine.models import Case, HumanTask, OutboxMessage, WorkflowInstance
from engine.scenarios import Walker, application
from engine.service import Actor, CaseReview
from engine.workdays import add_working_days, to_date

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # a Monday, as in the tests
AGENCIES = ("police", "council", "housing", "fire")
WINDOW = 20  # progress updates per measuring window
PROGRESS = "progress"  # the kind measured: deliver_action completed with status in_progress
LATE = 300  # the window growth compares with the first one


@dataclass(frozen=True)
class Plan:
    """The shape of the long case."""

    actions: int  # actions agreed at the first panel
    reconvene_actions: int  # more actions agreed at the reconvened panel
    reconvene_at: int  # reconvene once the case has this many completed tasks
    completions: int  # keep going until the case has this many completed tasks, then close it
    windows: tuple[int, ...]  # measure the first WINDOW progress updates from these counts on
    warmup_updates: int  # progress updates in the separate warm-up case


FULL = Plan(actions=24, reconvene_actions=6, reconvene_at=150, completions=1000,
            windows=(10, 100, LATE, 1000), warmup_updates=40)
QUICK = Plan(actions=16, reconvene_actions=4, reconvene_at=120, completions=320,
             windows=(10, LATE), warmup_updates=20)


# ----- the bare SpiffWorkflow floor --------------------------------------------------------------
class Floor:
    """The same completion as a plain SpiffWorkflow application would run it: full standard
    serialization (spec included), SpiffWorkflow's own script engine, no database.

    `floor_commit_ms` adds what storing the result durably costs at the very least: one UPDATE
    of one row and a COMMIT in a SQLite file with the engine's settings (WAL, default sync)."""

    def __init__(self, service: CaseReview, clock: FixedClock, workdir: Path):
        self.clock = clock
        self.serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
        self.effects: list[Any] = []
        with service.sessions() as db:
            self.version = service.version_for_new_case(db)  # the version every case here is pinned to
        self._specs: dict[str, dict] = {}
        effects = self.effects

        def now_date() -> date:
            return clock.now().date()

        # The helpers the diagrams call, as plain functions; side-effect helpers only record
        # what they were asked, as a plain application would queue them.
        helpers = {
            "today": now_date,
            "date_of": to_date,
            "add_working_days": add_working_days,
            "at_start_of": lambda d: datetime.combine(to_date(d), datetime.min.time(), timezone.utc).isoformat(),
            "working_days_from_now": lambda n: datetime.combine(add_working_days(now_date(), int(n)),
                                                                clock.now().time(), timezone.utc).isoformat(),
            "record_action": lambda action: effects.append(("record_action", dict(action))),
            "start_process": lambda process_id, data: effects.append(("start_process", process_id, dict(data))),
            "send_letter": lambda template, to="applicant": effects.append(("letter", template, to)),
            "notify_agency": lambda code, template: effects.append(("letter", template, code)),
            "set_stage": lambda name: effects.append(("stage", name)),
            "new_id": lambda: uuid.uuid4().hex[:12],
        }
        self.script_engine = PythonScriptEngine(environment=TaskDataEnvironment(helpers))
        self.store = sqlite3.connect(workdir / "floor.sqlite3", isolation_level=None)
        self.store.execute("PRAGMA journal_mode=WAL")
        self.store.execute("CREATE TABLE state (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        self.store.execute("INSERT INTO state VALUES (1, '')")

    def close(self) -> None:
        self.store.close()

    def specs(self, process_id: str) -> dict:
        """`spec` and `subprocess_specs` exactly as the standard serializer writes them."""
        if process_id not in self._specs:
            spec, subprocess_specs = self.version.specs[process_id]
            full = json.loads(self.serializer.serialize_json(BpmnWorkflow(spec, subprocess_specs)))
            self._specs[process_id] = {key: full[key] for key in ("spec", "subprocess_specs")}
        return self._specs[process_id]

    def standard_state(self, row: WorkflowInstance) -> str:
        """The engine's stored state (spec stored by name) made a standard full serialization."""
        state = json.loads(row.state)
        if state.get("spec") != row.process_id:
            raise RuntimeError(f"unexpected stored spec {state.get('spec')!r} for {row.process_id}")
        state.update(self.specs(row.process_id))
        return json.dumps(state)

    def round_trip(self, text: str, task_id: str, data: dict) -> tuple[float, float, str]:
        """(ms of deserialize -> complete -> do_engine_steps -> serialize, ms of that plus a
        durable write of the result, the result)."""
        self.effects.clear()
        with clock_in_use(self.clock):
            started = time.perf_counter()
            workflow = self.serializer.deserialize_json(text)
            workflow.script_engine = self.script_engine
            task = workflow.get_task_from_id(uuid.UUID(task_id))
            task.data.update(data)
            task.run()
            workflow.do_engine_steps()
            result = self.serializer.serialize_json(workflow)
            bare = time.perf_counter()
            self.store.execute("BEGIN IMMEDIATE")
            self.store.execute("UPDATE state SET body = ? WHERE id = 1", (result,))
            self.store.execute("COMMIT")
            stored = time.perf_counter()
        return (bare - started) * 1000, (stored - started) * 1000, result


# ----- driving one long case through the public commands -----------------------------------------
@dataclass
class Sample:
    n: int  # the case's completed tasks after this completion
    kind: str
    ms: float  # wall time of CaseReview.complete()
    cpu_ms: float  # CPU time of this process meanwhile (no fsync waits, no database server time)
    window: int | None = None
    floor_ms: float | None = None
    floor_commit_ms: float | None = None
    state_bytes: int | None = None  # size of the standard full serialization the floor loaded


@dataclass
class LongCase:
    service: CaseReview
    clock: FixedClock
    floor: Floor | None = None
    windows: tuple[int, ...] = ()
    reference: str = ""
    completed: int = 0
    samples: list[Sample] = field(default_factory=list)
    timers_fired: int = 0
    panels: int = 0
    companion: "LongCase | None" = None  # a young case updated alongside the LATE window
    _actors: dict = field(default_factory=dict)
    _taken: collections.Counter = field(default_factory=collections.Counter)
    _lazy_turn: int = 0

    # -- plumbing --
    @property
    def walker(self) -> Walker:
        return Walker(self.service, self.reference)

    def today(self) -> date:
        return self.clock.now().date()

    def actor(self, task: HumanTask) -> Actor:
        key = (task.role, task.agency)
        if key not in self._actors:
            self._actors[key] = self.walker.actor_for(task)
        return self._actors[key]

    def ready(self, name: str | None = None) -> list[HumanTask]:
        return self.walker.ready(name)

    def _window_for_next(self) -> int | None:
        n = self.completed + 1
        for start in self.windows:
            if n >= start and self._taken[start] < WINDOW:
                return start
        return None

    def complete(self, task: HumanTask, data: dict, kind: str) -> Sample:
        window = self._window_for_next() if kind == PROGRESS else None
        floor = floor_commit = size = None
        if window is not None and self.floor is not None:
            with self.service.sessions() as db:
                text = self.floor.standard_state(db.get(WorkflowInstance, task.instance_id))
            floor, floor_commit, _ = self.floor.round_trip(text, task.id, dict(data))
            size = len(text)
        actor = self.actor(task)
        wall, cpu = time.perf_counter(), time.process_time()
        self.service.complete(task.id, actor, data)
        wall, cpu = (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000
        self.completed += 1
        if window is not None:
            self._taken[window] += 1
        sample = Sample(self.completed, kind, wall, cpu, window, floor, floor_commit, size)
        self.samples.append(sample)
        if window == LATE and self.companion is not None:
            self.companion.progress_once()
        return sample

    def windows_full(self) -> bool:
        return all(self._taken[start] >= WINDOW for start in self.windows)

    def progress_once(self) -> None:
        task = self.ready("deliver_action")[0]
        self.complete(task, {"status": "in_progress", "progress_note": "Still on track."}, PROGRESS)

    def complete_all(self, name: str, data: dict, kind: str | None = None) -> int:
        tasks = self.ready(name)
        if not tasks:
            names = sorted({t.name for t in self.ready()})
            raise RuntimeError(f"{self.reference}: no ready task {name!r} (ready: {names})")
        for task in tasks:
            self.complete(task, data, kind or name)
        return len(tasks)

    def advance(self, days: int) -> int:
        self.clock.set(self.clock.now() + timedelta(days=days))
        fired = self.service.fire_due_timers()
        self.timers_fired += fired
        return fired

    # -- the lifecycle --
    def open(self) -> None:
        app = application(self.today(), reported_to="housing")
        self.reference = self.service.apply(app)["reference"]
        self.complete_all("provide_incident_history", {"incidents": [], "actions_taken": "Warning letter sent."})
        self.complete_all("verify_incidents", {"verified_incidents": app["incidents"], "verification_notes": "Checked."})
        self.complete_all("confirm_threshold", {"decision": "confirm"})

    def panel(self, actions: int, follow_up_working_days: int) -> None:
        self.panels += 1
        today = self.today()
        self.complete_all("schedule_panel", {"panel_date": (today + timedelta(days=14)).isoformat(),
                                             "chair_name": "Pat Chair", "chair_email": "chair@demo.test",
                                             "panel_agencies": list(AGENCIES)})
        self.complete_all("case_summary", {"summary": "Reports, visits and letters so far.", "incidents_held": 3,
                                           "actions_taken": "Visits and a warning letter."})
        self.complete_all("impact_statement", {"statement": "I want it to stop.", "wishes_to_attend": True})
        plan = [{"description": f"Panel {self.panels} action {i + 1}", "agency": AGENCIES[i % len(AGENCIES)],
                 "owner": f"Officer {i + 1}", "due": (today + timedelta(days=35 + 3 * i)).isoformat()}
                for i in range(actions)]
        self.complete_all("panel_outcome", {"attendees": ["Police", "Council", "Housing", "Fire", "Pat Chair"],
                                            "findings": "Reports were handled separately.",
                                            "recommendations": ["Joint visits", "Noise monitoring"],
                                            "actions": plan, "follow_up_working_days": follow_up_working_days})

    def week(self) -> None:
        """A week passes: timers fire (reminders, overdue actions), the coordinator chases
        overdue actions, and each agency updates each of its actions once: more time when the
        due date is near or past (one in four is forgotten until it is chased), else progress."""
        self.advance(7)
        for task in self.ready("chase_action"):
            self.complete(task, {"note": "Spoke to the officer; more time agreed."}, "chase_action")
        today = self.today()
        for task in self.ready("deliver_action"):
            if task.due is not None and task.due < today + timedelta(days=7):
                if task.due >= today:
                    self._lazy_turn += 1
                    if self._lazy_turn % 4 == 0:
                        continue
                new_due = max(task.due, today) + timedelta(days=35)
                self.complete(task, {"status": "extension_requested", "progress_note": "Needs more time.",
                                     "new_due": new_due.isoformat()}, "extension")
            else:
                self.complete(task, {"status": "in_progress", "progress_note": f"Week of {today}: on track."},
                              PROGRESS)

    def reconvene(self, actions: int) -> None:
        """Wait for the follow-up, then reconvene the panel, which agrees more actions."""
        for _ in range(60):
            if self.ready("follow_up"):
                break
            self.week()
        self.complete_all("follow_up", {"outcome": "reconvene", "victim_feedback": "It has started again."})
        self.panel(actions, follow_up_working_days=130)

    def close(self) -> None:
        """Every action completed; the follow-up closes the case."""
        for task in self.ready("chase_action"):
            self.complete(task, {"note": "Closed off."}, "chase_action")
        for task in self.ready("deliver_action"):
            self.complete(task, {"status": "completed", "progress_note": "Done."}, "completed")
        for _ in range(60):
            if self.ready("follow_up"):
                break
            self.advance(7)
        self.complete_all("follow_up", {"outcome": "close", "victim_feedback": "Much better now."})


# ----- measuring ---------------------------------------------------------------------------------
def make_service(database_url: str | None, workdir: Path) -> tuple[CaseReview, FixedClock]:
    url = database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    clock = FixedClock(START)
    service = CaseReview(Settings(database_url=url, outbox_dir=workdir / "outbox",
                                  demo_password="bench-password"), clock)
    service.init()
    seed_accounts(service)
    return service, clock


def warm_up(service: CaseReview, clock: FixedClock, floor: Floor | None, updates: int) -> None:
    """A separate short case first, so the measured case starts with warm caches (compiled
    bundle, form validators, sandbox compile cache, SQLAlchemy statement cache); it also checks
    that the floor does the engine's work (the action is recorded and continued)."""
    warm = LongCase(service, clock)
    warm.open()
    warm.panel(4, follow_up_working_days=130)
    for _ in range(updates):
        task = warm.ready("deliver_action")[0]
        data = {"status": "in_progress", "progress_note": "warm-up"}
        if floor is not None:
            with service.sessions() as db:
                text = floor.standard_state(db.get(WorkflowInstance, task.instance_id))
            _bare, _stored, result = floor.round_trip(text, task.id, dict(data))
            kinds = [effect[0] for effect in floor.effects]
            if not json.loads(result)["completed"] or kinds != ["record_action", "start_process"]:
                raise RuntimeError(f"the floor round trip did not do the engine's work: {kinds}")
        warm.complete(task, data, PROGRESS)


def tree_stats(service: CaseReview, reference: str) -> dict[str, Any]:
    """Size of every workflow instance of the case, read from the stored states."""
    with service.sessions() as db:
        case_id = db.scalar(select(Case.id).where(Case.reference == reference))
        rows = list(db.scalars(select(WorkflowInstance).where(WorkflowInstance.case_id == case_id)))
        letters = db.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.case_id == case_id))
        status = db.scalar(select(Case.status).where(Case.id == case_id))
    depths, sizes, by_process = [], [], collections.Counter()
    main_tasks = main_bytes = 0
    for row in rows:
        tasks = json.loads(row.state)["tasks"]
        sizes.append(len(tasks))
        depths.append(max(_depth(tasks, task_id) for task_id in tasks))
        by_process[row.process_id] += 1
        if row.process_id == "case_review":
            main_tasks, main_bytes = len(tasks), len(row.state)
    action_bytes = [len(r.state) for r in rows if r.process_id == "action_delivery"]
    return {
        "instances": len(rows),
        "instances_by_process": dict(by_process),
        "running_instances": sum(1 for r in rows if r.status == "running"),
        "steps_recorded": sum(r.steps for r in rows),
        "max_instance_tasks": max(sizes),
        "max_tree_depth": max(depths),
        "main_instance_tasks": main_tasks,
        "main_state_bytes": main_bytes,
        "action_state_bytes_median": int(statistics.median(action_bytes)) if action_bytes else 0,
        "letters": letters,
        "status": status,
    }


def _depth(tasks: dict, task_id: str | None) -> int:
    depth = 0
    while task_id is not None:
        depth += 1
        task_id = tasks[task_id].get("parent")
    return depth


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 2) if values else None


def window_summary(samples: list[Sample]) -> dict[str, Any]:
    cr, floor = _median(s.ms for s in samples), _median(s.floor_ms for s in samples)
    out = {"from": samples[0].n, "to": samples[-1].n, "samples": len(samples), "casereview_ms": cr,
           "casereview_cpu_ms": _median(s.cpu_ms for s in samples)}
    if floor:
        out.update(floor_ms=floor, floor_commit_ms=_median(s.floor_commit_ms for s in samples),
                   ratio=round(cr / floor, 2), floor_state_bytes=int(statistics.median(s.state_bytes for s in samples)))
    return out


def run(plan: Plan, database_url: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="casereview-bench-") as tmp:
        service, clock = make_service(database_url, Path(tmp))
        floor = Floor(service, clock, Path(tmp))
        try:
            began = time.perf_counter()
            warm_up(service, clock, floor, plan.warmup_updates)
            gc.collect()
            case = LongCase(service, clock, floor, plan.windows)
            case.open()
            case.panel(plan.actions, follow_up_working_days=25)
            reconvened = young_started = False
            while case.completed < plan.completions or not case.windows_full():
                if not reconvened and case.completed >= plan.reconvene_at:
                    case.reconvene(plan.reconvene_actions)
                    reconvened = True
                elif not young_started and case.completed >= LATE - 2 * plan.actions:
                    # A young case, opened now, is updated in turn with the long case's LATE
                    # window: the same moment's cost at ~10 completed tasks (a control for
                    # machine load drifting between the first and the LATE window).
                    young = LongCase(service, clock, None, (1,))
                    young.open()
                    young.panel(WINDOW, follow_up_working_days=130)
                    case.companion, young_started = young, True
                else:
                    case.week()
            case.close()
            stats = tree_stats(service, case.reference)
            elapsed = time.perf_counter() - began
        finally:
            floor.close()
            service.engine.dispose()
    if stats["steps_recorded"] != case.completed:
        raise RuntimeError(f"the case recorded {stats['steps_recorded']} steps, the benchmark made {case.completed}")
    if stats["status"] != "closed":
        raise RuntimeError(f"the long case ended {stats['status']}, not closed")

    windows = {start: [s for s in case.samples if s.window == start] for start in plan.windows}
    summaries = {str(start): window_summary(samples) for start, samples in windows.items()}
    measured = [s for samples in windows.values() for s in samples]
    early, late = summaries[str(plan.windows[0])], summaries[str(LATE)]
    young = [s for s in case.companion.samples if s.kind == PROGRESS][:WINDOW] if case.companion else []
    casereview_ms = statistics.median(s.ms for s in measured)
    floor_ms = statistics.median(s.floor_ms for s in measured)
    kinds = collections.defaultdict(list)
    for sample in case.samples:
        kinds[sample.kind].append(sample.ms)
    result: dict[str, Any] = {
        "floor_ms": round(floor_ms, 2),
        "casereview_ms": round(casereview_ms, 2),
        "ratio": round(casereview_ms / floor_ms, 2),
        "growth": round(late["casereview_ms"] / early["casereview_ms"], 2),
        "completions": case.completed,
        "instances": stats["instances"],
        "floor_commit_ms": _median(s.floor_commit_ms for s in measured),
        "ratio_to_floor_commit": round(casereview_ms / statistics.median(s.floor_commit_ms for s in measured), 2),
        "casereview_cpu_ms": _median(s.cpu_ms for s in measured),
        "growth_cpu": round(late["casereview_cpu_ms"] / early["casereview_cpu_ms"], 2),
        "floor_growth": round(late["floor_ms"] / early["floor_ms"], 2),
        # the same growth with each window divided by the floor measured alongside it: cancels
        # the machine's speed drifting between the windows (the floor's work does not grow)
        "growth_floor_normalized": round(late["ratio"] / early["ratio"], 2),
        "windows": summaries,
        "per_kind_ms": {kind: {"median": round(statistics.median(v), 2), "count": len(v)}
                        for kind, v in sorted(kinds.items())},
        "timers_fired": case.timers_fired,
        "panels": case.panels,
        "case": {k: v for k, v in stats.items() if k != "instances"},
        "seconds": round(elapsed, 1),
    }
    if young:
        young_ms = statistics.median(s.ms for s in young)
        result["growth_interleaved"] = round(late["casereview_ms"] / young_ms, 2)
        result["young_case_window"] = {"from": young[0].n, "to": young[-1].n, "casereview_ms": round(young_ms, 2)}
    return result


# ----- where the time goes -----------------------------------------------------------------------
PHASES: list[tuple[str, str, str]] = [
    # (module, attribute path, label); times are exclusive (nested sections are subtracted)
    ("sqlalchemy.engine.default", "DefaultDialect.do_commit", "database: COMMIT"),
    ("sqlalchemy.engine.default", "DefaultDialect.do_execute", "database: executing SQL (driver)"),
    ("sqlalchemy.engine.default", "DefaultDialect.do_execute_no_params", "database: executing SQL (driver)"),
    ("sqlalchemy.engine.default", "DefaultDialect.do_executemany", "database: executing SQL (driver)"),
    ("SpiffWorkflow.bpmn.workflow", "BpmnWorkflow.do_engine_steps", "SpiffWorkflow: do_engine_steps"),
    ("SpiffWorkflow.bpmn.workflow", "BpmnWorkflow.__init__", "SpiffWorkflow: new workflow (continue-as-new)"),
    ("SpiffWorkflow.task", "Task.run", "SpiffWorkflow: task.run"),
    ("engine.state", "StateSerializer.dumps", "SpiffWorkflow: serialize (pinned specs)"),
    ("engine.state", "StateSerializer.loads", "SpiffWorkflow: deserialize (pinned specs)"),
    ("engine.sandbox", "RestrictedEnvironment.evaluate", "sandbox: expressions"),
    ("engine.sandbox", "RestrictedEnvironment.execute", "sandbox: scripts"),
    ("engine.forms", "validate", "engine: form validation"),
    ("engine.runtime", "CaseRun._sync_tasks", "engine ORM: _sync_tasks (human_task rows)"),
    ("engine.runtime", "CaseRun._sync_timers", "engine ORM: _sync_timers (timer rows)"),
    ("engine.runtime", "CaseRun._apply_effects", "engine ORM: _apply_effects (action row)"),
    ("engine.runtime", "CaseRun.describe_task", "engine: describe_task"),
    ("engine.runtime", "CaseRun.start_instance", "engine ORM: start_instance (instance row)"),
    ("engine.service", "CaseReview._commit_run", "engine ORM: _commit_run (case update, audit row)"),
    ("engine.service", "CaseReview.complete", "engine ORM: complete (look-ups, lock, flushes)"),
]


@contextlib.contextmanager
def phase_timers(totals: collections.Counter):
    """Wrap the functions in PHASES with exclusive wall-clock timers; undone on exit."""
    stack: list[list] = []
    undo = []

    def wrap(owner, name, label):
        original = owner.__dict__[name]

        @functools.wraps(original)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            stack.append([label, 0.0])
            try:
                return original(*args, **kwargs)
            finally:
                _label, children = stack.pop()
                spent = time.perf_counter() - started
                totals[label] += spent - children
                if stack:
                    stack[-1][1] += spent

        setattr(owner, name, timed)
        undo.append((owner, name, original))

    try:
        for module_name, path, label in PHASES:
            owner = importlib.import_module(module_name)
            *parents, name = path.split(".")
            for parent in parents:
                owner = getattr(owner, parent)
            wrap(owner, name, label)
        yield
    finally:
        for owner, name, original in reversed(undo):
            setattr(owner, name, original)


def _package(filename: str) -> str:
    for marker, label in (("/sqlalchemy/", "SQLAlchemy"), ("/SpiffWorkflow/", "SpiffWorkflow"),
                          ("/engine/", "engine (this project)"), ("/jsonschema", "jsonschema"),
                          ("/referencing/", "jsonschema"), ("/json/", "json"), ("/psycopg", "psycopg"),
                          ("/holidays/", "holidays")):
        if marker in filename:
            return label
    if filename == "~":
        return "C functions (sqlite3 commit/execute, dict, json, ...)"
    return "other Python (stdlib)"


def profile(plan: Plan, database_url: str | None, updates: int = 100) -> dict[str, Any]:
    """Drive a case to LATE completed tasks, then run `updates` progress updates three times:
    plain, with exclusive phase timers (wall time by phase), under cProfile (self time by
    package and the top functions)."""
    with tempfile.TemporaryDirectory(prefix="casereview-bench-") as tmp:
        service, clock = make_service(database_url, Path(tmp))
        try:
            warm_up(service, clock, None, plan.warmup_updates)
            case = LongCase(service, clock)
            case.open()
            case.panel(plan.actions, follow_up_working_days=130)
            while case.completed < LATE:
                case.week()

            def progress_updates(count: int) -> float:
                total = 0.0
                for _ in range(count):
                    task = case.ready("deliver_action")[0]
                    actor = case.actor(task)
                    started = time.perf_counter()
                    service.complete(task.id, actor, {"status": "in_progress", "progress_note": "profiled"})
                    total += time.perf_counter() - started
                return total

            plain = progress_updates(updates)
            totals: collections.Counter = collections.Counter()
            with phase_timers(totals):
                timed = progress_updates(updates)
            profiler = cProfile.Profile()
            profiler.enable()
            progress_updates(updates)
            profiler.disable()
        finally:
            service.engine.dispose()
    stats = pstats.Stats(profiler)
    by_package: collections.Counter = collections.Counter()
    for (filename, _line, _name), (_cc, _nc, self_time, _cum, _callers) in stats.stats.items():
        by_package[_package(filename)] += self_time
    package_total = sum(by_package.values())
    top = sorted(stats.stats.items(), key=lambda item: -item[1][2])[:15]
    return {
        "updates": updates,
        "plain_ms_per_update": round(plain / updates * 1000, 2),
        "timed_ms_per_update": round(timed / updates * 1000, 2),
        "phases_share": {label: round(value / timed, 3)
                         for label, value in sorted(totals.items(), key=lambda item: -item[1])},
        "cprofile_self_time_share": {label: round(value / package_total, 3)
                                     for label, value in sorted(by_package.items(), key=lambda item: -item[1])},
        "cprofile_top_self_ms": {f"{Path(f).name}:{line} {name}": round(self_time / updates * 1000, 2)
                                 for (f, line, name), (_cc, _nc, self_time, _cum, _c) in top},
    }


# ----- command line ------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"python": platform.python_version(), "platform": platform.platform(), "cpu": cpu,
            "cpus": os.cpu_count(), "sqlite": sqlite3.sqlite_version, "sqlalchemy": sqlalchemy.__version__,
            "spiffworkflow": importlib.metadata.version("SpiffWorkflow"),
            "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}


def human(result: dict[str, Any]) -> str:
    lines = [f"{result['completions']} completions, {result['instances']} instances, {result['seconds']} s",
             f"floor {result['floor_ms']} ms  casereview {result['casereview_ms']} ms  ratio {result['ratio']}  "
             f"growth {result['growth']} (controls: interleaved {result.get('growth_interleaved')}, "
             f"floor-normalized {result['growth_floor_normalized']})"]
    for start, window in result["windows"].items():
        lines.append(f"  window from {start:>4}: completions {window['from']}-{window['to']}  "
                     f"casereview {window['casereview_ms']} ms  floor {window.get('floor_ms')} ms  "
                     f"ratio {window.get('ratio')}")
    if "profile" in result:
        lines.append("share of a progress update's wall time (exclusive, phase timers):")
        for label, value in result["profile"]["phases_share"].items():
            lines.append(f"  {value:6.1%}  {label}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.completion",
                                     description="Cost of a task completion in a long case, next to bare SpiffWorkflow.")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object (the last line)")
    parser.add_argument("--quick", action="store_true", help="a shorter run (about 350 completions) for smoke tests")
    parser.add_argument("--profile", action="store_true", help="also profile 100 progress updates at 300 completions")
    parser.add_argument("--database-url", help="an empty database to run on instead of a temporary SQLite file")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    result = run(plan, args.database_url)
    result["mode"] = "quick" if args.quick else "full"
    result["database"] = sqlalchemy.make_url(args.database_url).get_backend_name() if args.database_url else "sqlite"
    result["targets"] = {"ratio": 1.5, "growth": 1.5,
                         "ratio_met": result["ratio"] <= 1.5, "growth_met": result["growth"] <= 1.5}
    if args.profile:
        result["profile"] = profile(plan, args.database_url)
    result["machine"] = machine()
    print(human(result), file=sys.stderr)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
