"""Commands racing each other on the same cases: threads of one app node, several app nodes
(CaseReview objects with their own connection pools) and several timer workers.

Every race releases its threads together with a threading.Barrier and then checks the database
as a whole: one completion per task, one firing per timer, one letter per event, no duplicated
or orphaned task rows. The parametrized tests run on SQLite and PostgreSQL; the ones marked
`postgres` need several nodes on a real server (row locks, SKIP LOCKED).
"""
from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import pytest
from sqlalchemy import func, select

from engine.clock import FixedClock
from engine.config import Settings
from engine.demo import seed_accounts
from engine.errors import Conflict, TaskNotReady
from engine.models import AuditEvent, Case, HumanTask, OutboxMessage, Timer, WorkflowInstance
from engine.scenarios import Walker, application
from engine.service import VICTIM, CaseReview

from .conftest import START

TODAY = START.date()
# The consent deadline is 10 working days after the application (Monday 2 March 2026 → 16 March).
PAST_CONSENT_DEADLINE = datetime(2026, 3, 20, 9, 0, tzinfo=timezone.utc)
RACE_TIMEOUT = 60  # seconds; a thread still running after this is reported as a deadlock

HISTORY = {"incidents": [], "actions_taken": "Warning letter sent."}
CONSENT = {"consent": "given"}


# ----- racing ---------------------------------------------------------------------------------
@dataclass
class Result:
    value: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def race(*calls: Callable[[], Any]) -> list[Result]:
    """Run every call in its own thread, all released at once; the results in call order."""
    barrier = threading.Barrier(len(calls))
    results = [Result() for _ in calls]

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=RACE_TIMEOUT)
            results[index].value = call()
        except BaseException as exc:  # noqa: BLE001 - every failure is reported by the test
            results[index].error = exc

    threads = [threading.Thread(target=run, args=(i, call), daemon=True, name=f"race-{i}")
               for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(RACE_TIMEOUT)
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"threads still running after {RACE_TIMEOUT}s (deadlock?): {stuck}"
    return results


def unexpected(results: list[Result], *allowed: type[BaseException]) -> list[BaseException]:
    return [r.error for r in results if r.error is not None and not isinstance(r.error, allowed)]


# ----- app nodes --------------------------------------------------------------------------------
class Nodes:
    """Several CaseReview objects on one database, each with its own pool and clock."""

    def __init__(self, url: str, tmp_path):
        self.url, self.tmp_path = url, tmp_path
        self.made: list[CaseReview] = []

    def new(self, at: datetime = START) -> CaseReview:
        settings = Settings(database_url=self.url, outbox_dir=self.tmp_path / "outbox", demo_password="test-password")
        node = CaseReview(settings, FixedClock(at))
        if not self.made:  # the first node sets the database up, as `casereview init` would
            node.init()
            seed_accounts(node)
        self.made.append(node)
        return node

    def close(self) -> None:
        for node in self.made:
            node.engine.dispose()


@pytest.fixture
def nodes(database_url, tmp_path):
    made = Nodes(database_url, tmp_path)
    yield made
    made.close()


@pytest.fixture
def pg_nodes(postgres_url, tmp_path):
    made = Nodes(postgres_url, tmp_path)
    yield made
    made.close()


# ----- reading the database back ---------------------------------------------------------------
def case_id(node: CaseReview, reference: str) -> int:
    with node.sessions() as db:
        return db.scalar(select(Case.id).where(Case.reference == reference))


def case_row(node: CaseReview, reference: str) -> Case:
    with node.sessions() as db:
        case = db.scalar(select(Case).where(Case.reference == reference))
        db.expunge(case)
        return case


def rows(node: CaseReview, model, reference: str) -> list:
    cid = case_id(node, reference)
    with node.sessions() as db:
        found = list(db.scalars(select(model).where(model.case_id == cid).order_by(model.id)))
        for row in found:
            db.expunge(row)
        return found


def audit(node: CaseReview, reference: str) -> list[AuditEvent]:
    return rows(node, AuditEvent, reference)


def completions(node: CaseReview, reference: str, task_id: str) -> list[AuditEvent]:
    return [e for e in audit(node, reference)
            if e.event == "task_completed" and (e.detail or {}).get("task_id") == task_id]


def letters(node: CaseReview, reference: str) -> Counter:
    return Counter(m.template for m in rows(node, OutboxMessage, reference))


def task_rows(node: CaseReview, reference: str) -> list[HumanTask]:
    return rows(node, HumanTask, reference)


def timer_rows(node: CaseReview, reference: str) -> list[Timer]:
    return rows(node, Timer, reference)


def running_instances(node: CaseReview, reference: str) -> list[WorkflowInstance]:
    return [i for i in rows(node, WorkflowInstance, reference) if i.status == "running"]


def due_timers(node: CaseReview) -> int:
    with node.sessions() as db:
        return db.scalar(select(func.count()).select_from(Timer).where(Timer.due_at <= node.now()))


def history_events(node: CaseReview, reference: str) -> list[tuple[str, str | None]]:
    return [(e.event, (e.detail or {}).get("task")) for e in audit(node, reference)]


def assert_no_duplicate_tasks(node: CaseReview, reference: str) -> None:
    """Each ready task once: one row per workflow task, one per (name, agency) in these cases."""
    tasks = task_rows(node, reference)
    assert len({t.id for t in tasks}) == len(tasks)
    keys = Counter((t.name, t.agency) for t in tasks)
    assert all(n == 1 for n in keys.values()), f"{reference}: duplicated ready tasks {keys}"


def apply(node: CaseReview, **kwargs) -> tuple[str, Walker]:
    reference = node.apply(application(node.now().date(), **kwargs))["reference"]
    return reference, Walker(node, reference)


# ----- 1. many completions of one task ----------------------------------------------------------
def test_same_task_completed_by_six_threads_succeeds_once(service):
    # A reference case, completed by one thread: what the raced case must look like afterwards.
    expected_ref, expected = apply(service, third_party=True)
    expected.complete("victim_consent", CONSENT)

    reference, walker = apply(service, third_party=True)
    [task] = walker.ready("victim_consent")
    actor = walker.actor_for(task)
    results = race(*[lambda: service.complete(task.id, actor, dict(CONSENT)) for _ in range(6)])

    assert unexpected(results, TaskNotReady) == []
    assert sum(r.ok for r in results) == 1
    assert sum(isinstance(r.error, TaskNotReady) for r in results) == 5
    [winner] = [r.value for r in results if r.ok]
    assert winner == {"completed": task.id, "case": reference, "stage": "incident_history", "status": "open"}

    assert len(completions(service, reference, task.id)) == 1
    assert history_events(service, reference) == history_events(service, expected_ref)
    assert letters(service, reference) == letters(service, expected_ref)
    assert_no_duplicate_tasks(service, reference)
    assert sorted((t.name, t.agency) for t in task_rows(service, reference)) == [
        ("provide_incident_history", "council"), ("provide_incident_history", "police")]
    assert sorted(t.name for t in timer_rows(service, reference)) == sorted(
        t.name for t in timer_rows(service, expected_ref))
    case = case_row(service, reference)
    assert (case.status, case.stage, case.lock_version) == ("open", "incident_history", 2)


@pytest.mark.postgres
def test_same_task_completed_from_three_nodes_succeeds_once(pg_nodes):
    """The join after the partners' histories: the last history raced by 6 threads on 3 nodes."""
    first = pg_nodes.new()
    others = [pg_nodes.new(), pg_nodes.new()]
    reference, walker = apply(first)
    police = next(t for t in walker.ready("provide_incident_history") if t.agency == "police")
    first.complete(police.id, walker.actor_for(police), dict(HISTORY))
    [council] = walker.ready("provide_incident_history")
    actor = walker.actor_for(council)

    calls = [lambda node=node: node.complete(council.id, actor, dict(HISTORY))
             for node in (first, *others) for _ in range(2)]
    results = race(*calls)

    assert unexpected(results, TaskNotReady) == []
    assert sum(r.ok for r in results) == 1
    assert len(completions(first, reference, council.id)) == 1
    assert [e for e, _task in history_events(first, reference)] == [
        "application_received", "task_completed", "task_completed"]
    assert [(t.name, t.role) for t in task_rows(first, reference)] == [("verify_incidents", "coordinator")]
    case = case_row(first, reference)
    assert (case.status, case.stage, case.lock_version) == ("open", "incident_history", 3)
    # The case carries on normally from here.
    walker.verify(application(TODAY)["incidents"])
    assert [t.name for t in task_rows(first, reference)] == ["confirm_threshold"]


# ----- 2. different tasks of one case at the same time ------------------------------------------
def _histories_together(history_node: Callable[[int], CaseReview], cases: list[tuple[str, Walker]]) -> None:
    for reference, walker in cases:
        tasks = {t.agency: t for t in walker.ready("provide_incident_history")}
        assert sorted(tasks) == ["council", "police"]
        actors = {agency: walker.actor_for(task) for agency, task in tasks.items()}
        results = race(*[lambda i=i, agency=agency: history_node(i).complete(tasks[agency].id, actors[agency],
                                                                             dict(HISTORY))
                         for i, agency in enumerate(("police", "council"))])
        assert [r.error for r in results] == [None, None]
        node = history_node(0)
        assert all(len(completions(node, reference, t.id)) == 1 for t in tasks.values())
        assert [(t.name, t.role) for t in task_rows(node, reference)] == [("verify_incidents", "coordinator")]
        assert_no_duplicate_tasks(node, reference)
        assert [e for e, _task in history_events(node, reference)] == [
            "application_received", "task_completed", "task_completed"]
        assert case_row(node, reference).lock_version == 3
        assert timer_rows(node, reference) == []  # the history reminders went with the tasks
        # The join saw both histories: verifying moves the case on to the threshold decision.
        walker.verify(application(TODAY)["incidents"])
        assert [t.name for t in task_rows(node, reference)] == ["confirm_threshold"]


def test_police_and_council_histories_completed_together(service):
    cases = [apply(service) for _ in range(3)]
    _histories_together(lambda _i: service, cases)


@pytest.mark.postgres
def test_police_and_council_histories_completed_on_two_nodes(pg_nodes):
    police_node, council_node = pg_nodes.new(), pg_nodes.new()
    cases = [apply(police_node) for _ in range(3)]
    _histories_together(lambda i: (police_node, council_node)[i], cases)


# ----- 3. two timer workers ----------------------------------------------------------------------
def test_two_timer_workers_fire_each_due_timer_once(nodes):
    office = nodes.new()
    due_cases = [apply(office, third_party=True)[0] for _ in range(5)]
    # Two cases with timers that are not due yet on the 20th: applied on Monday 16 March, the
    # history reminder is due on the 23rd and the consent deadline on the 30th.
    office.clock.set(datetime(2026, 3, 16, 9, 0, tzinfo=timezone.utc))
    victim_case, _walker = apply(office)
    late_case, _walker = apply(office, third_party=True)
    workers = [nodes.new(PAST_CONSENT_DEADLINE), nodes.new(PAST_CONSENT_DEADLINE)]
    due = due_timers(workers[0])
    assert due == len(due_cases)

    results = race(*[worker.fire_due_timers for worker in workers])

    assert [r.error for r in results] == [None, None]
    assert sum(r.value for r in results) == due
    assert due_timers(workers[0]) == 0
    for reference in due_cases:
        case = case_row(office, reference)
        assert (case.status, case.stage) == ("withdrawn", "withdrawn")
        assert letters(office, reference)["withdrawn_no_consent"] == 1
        events = [e for e, _task in history_events(office, reference)]
        assert events == ["application_received", "timer_fired"]
        [fired] = [e for e in audit(office, reference) if e.event == "timer_fired"]
        assert fired.detail["timers"] == ["consent_deadline"]
        assert fired.actor == "system"
        assert task_rows(office, reference) == [] and timer_rows(office, reference) == []
        assert running_instances(office, reference) == []
    for reference in (victim_case, late_case):
        case = case_row(office, reference)
        assert case.status == "open" and "timer_fired" not in [e for e, _ in history_events(office, reference)]
        assert timer_rows(office, reference)
    assert [t.name for t in task_rows(office, late_case)] == ["victim_consent"]
    # A second pass finds nothing left to do.
    assert [w.fire_due_timers() for w in workers] == [0, 0]


@pytest.mark.postgres
def test_four_timer_workers_on_many_cases(pg_nodes):
    """More workers, and cases that stay open after their timers fire (the partners' history
    reminder and overdue notice, both due by the 20th): SKIP LOCKED hands each case to one worker,
    and a worker that gets a case just after another one fired it finds nothing left to fire."""
    office = pg_nodes.new()
    consent_cases = [apply(office, third_party=True)[0] for _ in range(8)]
    history_cases = [apply(office)[0] for _ in range(8)]
    workers = [pg_nodes.new(PAST_CONSENT_DEADLINE) for _ in range(4)]
    due = due_timers(workers[0])
    assert due == 8 + 8 * 2

    results = race(*[worker.fire_due_timers for worker in workers])

    assert [r.error for r in results] == [None] * 4
    assert sum(r.value for r in results) == due
    assert due_timers(workers[0]) == 0
    for reference in consent_cases + history_cases:
        assert len([e for e in audit(office, reference) if e.event == "timer_fired"]) == 1, reference
    for reference in consent_cases:
        assert case_row(office, reference).status == "withdrawn"
        assert letters(office, reference)["withdrawn_no_consent"] == 1
        assert task_rows(office, reference) == []
    for reference in history_cases:
        [fired] = [e for e in audit(office, reference) if e.event == "timer_fired"]
        assert sorted(fired.detail["timers"]) == ["history_overdue", "history_reminder"]
        case = case_row(office, reference)
        assert (case.status, case.stage, case.lock_version) == ("open", "incident_history", 2)
        sent = letters(office, reference)
        assert (sent["history_reminder"], sent["history_overdue"]) == (2, 1)  # police and council; coordinator
        assert sorted((t.name, t.agency) for t in task_rows(office, reference)) == [
            ("provide_incident_history", "council"), ("provide_incident_history", "police")]
        assert timer_rows(office, reference) == []
    with office.sessions() as db:
        assert db.scalar(select(func.count()).select_from(Case).where(Case.status == "withdrawn")) == 8


# ----- 4. a completion racing the timer that cancels it -----------------------------------------
def _consent_or_timer(office: CaseReview, web: CaseReview, workers: list[CaseReview], count: int) -> Counter:
    cases = [apply(office, third_party=True) for _ in range(count)]
    tasks = {reference: walker.ready("victim_consent")[0] for reference, walker in cases}
    # the victim's answer, as the consent link gives it
    calls = [lambda task=task: web.complete(task.id, VICTIM, dict(CONSENT)) for task in tasks.values()]
    calls += [worker.fire_due_timers for worker in workers]

    results = race(*calls)

    completed, fired = results[:count], results[count:]
    assert unexpected(completed, TaskNotReady) == []
    assert [r.error for r in fired] == [None] * len(workers)
    outcomes = Counter()
    for (reference, _walker), done in zip(cases, completed):
        case = case_row(office, reference)
        events = [e for e, _task in history_events(office, reference)]
        sent = letters(office, reference)
        names = sorted(t.name for t in task_rows(office, reference))
        if done.ok:
            outcome = "consent"
            assert (case.status, case.stage) == ("open", "incident_history")
            assert events == ["application_received", "task_completed"]
            assert names == ["provide_incident_history", "provide_incident_history"]
            assert "withdrawn_no_consent" not in sent
            assert "consent_deadline" not in [t.name for t in timer_rows(office, reference)]
        else:
            outcome = "withdrawn"
            assert (case.status, case.stage) == ("withdrawn", "withdrawn"), done.error
            assert events == ["application_received", "timer_fired"]
            assert sent["withdrawn_no_consent"] == 1
            assert names == [] and timer_rows(office, reference) == []
            assert running_instances(office, reference) == []
        assert_no_duplicate_tasks(office, reference)
        outcomes[outcome] += 1
    assert sum(r.value for r in fired) == outcomes["withdrawn"]
    return outcomes


def test_consent_racing_its_deadline_is_one_or_the_other(nodes):
    office = nodes.new()
    web = nodes.new(PAST_CONSENT_DEADLINE)
    worker = nodes.new(PAST_CONSENT_DEADLINE)
    outcomes = _consent_or_timer(office, web, [worker], 4)
    assert sum(outcomes.values()) == 4


@pytest.mark.postgres
def test_consent_racing_two_timer_workers_over_rounds(pg_nodes):
    office = pg_nodes.new()
    web = pg_nodes.new(PAST_CONSENT_DEADLINE)
    workers = [pg_nodes.new(PAST_CONSENT_DEADLINE), pg_nodes.new(PAST_CONSENT_DEADLINE)]
    seen = Counter()
    for _round in range(3):
        seen += _consent_or_timer(office, web, workers, 4)
    assert sum(seen.values()) == 12


# ----- other commands on the same case ----------------------------------------------------------
def test_withdrawal_racing_two_withdrawals_and_the_histories(nodes):
    """Two withdrawals and both partners' histories at once: the case is withdrawn exactly once,
    a history either lands before the withdrawal or is refused as no longer ready."""
    first, second = nodes.new(), nodes.new()
    for _round in range(3):
        reference, walker = apply(first)
        tasks = sorted(walker.ready("provide_incident_history"), key=lambda t: t.agency)
        actors = [walker.actor_for(t) for t in tasks]
        results = race(lambda: first.withdraw(reference, reason="Moved house"),
                       lambda: second.withdraw(reference, reason="Moved house"),
                       lambda: first.complete(tasks[0].id, actors[0], dict(HISTORY)),
                       lambda: second.complete(tasks[1].id, actors[1], dict(HISTORY)))

        withdrawals, histories = results[:2], results[2:]
        assert sum(r.ok for r in withdrawals) == 1
        assert unexpected(withdrawals, Conflict) == [] and unexpected(histories, TaskNotReady) == []
        case = case_row(first, reference)
        assert (case.status, case.stage) == ("withdrawn", "withdrawn")
        events = [e for e, _task in history_events(first, reference)]
        assert events.count("withdrawal_requested") == 1 and events[-1] == "withdrawal_requested"
        assert events.count("task_completed") == sum(r.ok for r in histories)
        assert letters(first, reference)["withdrawal"] == 1
        assert task_rows(first, reference) == [] and timer_rows(first, reference) == []
        assert running_instances(first, reference) == []


@pytest.mark.postgres
def test_applications_received_together_get_distinct_references(pg_nodes):
    first, second = pg_nodes.new(), pg_nodes.new()
    results = race(*[lambda node=node: node.apply(application(TODAY)) for node in (first, second) for _ in range(2)])
    for result in results:
        if result.error is not None:
            raise result.error
    assert len({r.value["reference"] for r in results}) == 4
