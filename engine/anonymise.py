"""Anonymising one closed case: what retention does after the retention period and what an
erasure request does at once.

Personal data goes: names, email, phone and postal addresses, and free text (the application's
descriptions and impact, everything typed into task forms, letter bodies and recipients, action
descriptions and notes). What the figures and the process history need stays: dates, counts,
stages, statuses, routes, agencies, the threshold result (without incident references or the
override reason), and the shape of every workflow instance (which steps ran and when). The
audit trail is never touched: it holds no applicant's personal data (engine/audit.py).

Free text is recognised by what it is not. A string in the case's JSON survives only when it is
a date, an identifier (UUID, or under an `id` key), the case reference, an upper-case reason
code (`ASB_THREE_IN_SIX_MONTHS`), an agency code, or text the case's process version itself
holds word for word (a form's enum value or label, a decision table's rule description, a
quoted literal in a script): text written by process owners, never by or about a person. A postcode keeps only its
outward code (`AB1`), which is enough for figures by area and identifies nobody.

A closed case never runs again, so its workflow state can lose its data; its task tree is kept
so the case's diagram still shows the steps taken.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import inspect, select, table, column, update, delete
from sqlalchemy.orm import Session

from .errors import Conflict
from .models import Action, Agency, Case, OutboxMessage, ProcessVersion, WorkflowInstance
from .safexml import parse_xml

MARK = "[anonymised]"
CLOSED_STATUSES = ("closed", "withdrawn")
PERSONAL_ROLES = ("applicant", "victim")  # outbox recipients who are people, not agencies
ANONYMISED_EVENTS = ("case_anonymised", "case_erased")

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_REASON_CODE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$")
_QUOTED_CODE = re.compile(r"""["']([a-z][a-z0-9]*(?:_[a-z0-9]+)*)["']""")
_FULL_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")
_OUTWARD_ONLY = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?$")
# Values SpiffWorkflow's serializer writes as {"typename": ..., "value": ...}: dates, numbers, ids.
_TYPED_VALUES = {"date", "datetime", "timedelta", "UUID", "Decimal"}


def outward_code(postcode: str | None) -> str | None:
    """`AB1 2CD` → `AB1`; None when the text is not a postcode at all."""
    if not postcode:
        return None
    compact = re.sub(r"\s+", "", postcode).upper()
    full = _FULL_POSTCODE.match(compact)
    if full:
        return full.group(1)
    return compact if _OUTWARD_ONLY.match(compact) else None


def is_full_postcode(postcode: str | None) -> bool:
    return bool(postcode and _FULL_POSTCODE.match(re.sub(r"\s+", "", postcode).upper()))


class Scrubber:
    """Replaces the personal strings of a JSON value, noting the paths it changed."""

    def __init__(self, vocabulary: set[str], reference: str):
        self.vocabulary = vocabulary
        self.reference = reference

    def keeps(self, text: str, key: str | None) -> bool:
        if not text or text == MARK or text == self.reference:
            return True
        if _DATE.match(text) or _UUID.match(text) or _REASON_CODE.match(text):
            return True
        if key is not None and (key == "id" or key.endswith("_id")) and re.fullmatch(r"[0-9a-f]{6,64}", text):
            return True
        return text.strip() in self.vocabulary

    def __call__(self, value: Any, path: str, changed: set[str], key: str | None = None) -> Any:
        if isinstance(value, dict):
            if value.get("typename") in _TYPED_VALUES:
                return value
            return {k: self(v, f"{path}.{k}" if path else str(k), changed, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self(item, f"{path}[]", changed, key) for item in value]
        if isinstance(value, str):
            if key == "postcode":
                new = outward_code(value) or MARK
            else:
                new = value if self.keeps(value, key) else MARK
            if new != value:
                changed.add(path)
            return new
        return value


@dataclass
class Anonymisation:
    """What anonymising one case changes. `fields` names each change (never its value)."""

    case_id: int
    reference: str
    closed_at: datetime | None
    fields: list[str] = field(default_factory=list)
    _writes: list[Callable[[Session], None]] = field(default_factory=list, repr=False)

    def change(self, label: str, write: Callable[[Session], None]) -> None:
        self.fields.append(label)
        self._writes.append(write)

    def apply(self, db: Session) -> None:
        for write in self._writes:
            write(db)
        db.flush()

    def as_dict(self) -> dict:
        return {"reference": self.reference,
                "closed_at": self.closed_at.isoformat() if self.closed_at else None,
                "fields": self.fields}


def plan(db: Session, case: Case, now: datetime) -> Anonymisation:
    """Work out every change anonymising `case` makes, without making any (see `apply`)."""
    if case.status not in CLOSED_STATUSES:
        raise Conflict(f"case {case.reference} is {case.status}: only closed or withdrawn cases can be anonymised")
    result = Anonymisation(case.id, case.reference, case.closed_at)
    scrub = Scrubber(vocabulary(db, case), case.reference)
    _plan_case_row(result, case, scrub)
    _plan_workflow_states(db, result, case, scrub)
    _plan_letters(db, result, case)
    _plan_actions(db, result, case)
    _plan_other_tables(db, result, case, now)
    return result


def _set(obj, attribute: str, value) -> Callable[[Session], None]:
    return lambda _db: setattr(obj, attribute, value)


def _plan_case_row(result: Anonymisation, case: Case, scrub: Scrubber) -> None:
    if case.applicant_name != MARK:
        result.change("case_review.applicant_name", _set(case, "applicant_name", MARK))
    if case.applicant_email is not None:
        result.change("case_review.applicant_email", _set(case, "applicant_email", None))
    if case.victim_name not in (None, MARK):
        result.change("case_review.victim_name", _set(case, "victim_name", MARK))
    if case.postcode != outward_code(case.postcode):
        result.change("case_review.postcode", _set(case, "postcode", outward_code(case.postcode)))
    for name in ("application", "threshold"):
        value = getattr(case, name)
        if value is None:
            continue
        changed: set[str] = set()
        new = scrub(value, "", changed)
        if changed:
            for path in sorted(changed):
                result.fields.append(f"case_review.{name}.{path}")
            result._writes.append(_set(case, name, new))


def _plan_workflow_states(db: Session, result: Anonymisation, case: Case, scrub: Scrubber) -> None:
    rows = db.scalars(select(WorkflowInstance).where(WorkflowInstance.case_id == case.id).order_by(WorkflowInstance.id))
    for row in rows:
        state = json.loads(row.state)
        changed: set[str] = set()
        _scrub_state(state, scrub, changed)
        if changed:
            for path in sorted(changed):
                result.fields.append(f"workflow_instance[{row.id}:{row.process_id}].state:{path}")
            result._writes.append(_set(row, "state", json.dumps(state)))


def _scrub_state(state: dict, scrub: Scrubber, changed: set[str]) -> None:
    """Task data only: data, data deltas, internal data (message payloads), pending event
    payloads; the tree, task states and times stay as they are. Subprocesses likewise."""
    for key in ("data", "correlations"):
        if key in state:
            state[key] = scrub(state[key], "", changed)
    for task in (state.get("tasks") or {}).values():
        task["data"] = scrub(task.get("data") or {}, "", changed)
        delta = task.get("delta") or {}
        if "updates" in delta:
            delta["updates"] = scrub(delta["updates"], "", changed)
        task["internal_data"] = scrub(task.get("internal_data") or {}, "", changed)
    for event in state.get("bpmn_events") or []:
        if isinstance(event, dict) and "payload" in event:
            event["payload"] = scrub(event["payload"], "", changed)
    for subprocess in (state.get("subprocesses") or {}).values():
        _scrub_state(subprocess, scrub, changed)


def _plan_letters(db: Session, result: Anonymisation, case: Case) -> None:
    for letter in db.scalars(select(OutboxMessage).where(OutboxMessage.case_id == case.id).order_by(OutboxMessage.id)):
        if letter.body != MARK:
            result.change(f"outbox[{letter.id}].body", _set(letter, "body", MARK))
        if letter.recipient_role in PERSONAL_ROLES and letter.recipient != MARK:
            result.change(f"outbox[{letter.id}].recipient", _set(letter, "recipient", MARK))


def _plan_actions(db: Session, result: Anonymisation, case: Case) -> None:
    for action in db.scalars(select(Action).where(Action.case_id == case.id).order_by(Action.id)):
        if action.description != MARK:
            result.change(f"action[{action.id}].description", _set(action, "description", MARK))
        if action.last_note not in (None, MARK):
            result.change(f"action[{action.id}].last_note", _set(action, "last_note", MARK))


def _plan_other_tables(db: Session, result: Anonymisation, case: Case, now: datetime) -> None:
    """Tables other features keep about a case, when this database has them: stored letter PDFs
    and uploaded documents (deleted: a file cannot be anonymised in place) and applicants'
    private links."""
    tables = set(inspect(db.connection()).get_table_names())
    if "letter_document" in tables:
        documents = table("letter_document", column("id"), column("case_id"))
        for (document_id,) in db.execute(select(documents.c.id).where(documents.c.case_id == case.id)):
            result.change(f"letter_document[{document_id}] (deleted)",
                          lambda db, i=document_id: db.execute(delete(documents).where(documents.c.id == i)))
    if "document" in tables:  # uploaded files: deleted, as a file cannot be anonymised in place
        uploads = table("document", column("id"), column("case_id"))
        for (document_id,) in db.execute(select(uploads.c.id).where(uploads.c.case_id == case.id)
                                         .order_by(uploads.c.id)):
            result.change(f"document[{document_id}] (deleted)",
                          lambda db, i=document_id: db.execute(delete(uploads).where(uploads.c.id == i)))
    if "applicant_link" in tables:
        links = table("applicant_link", column("id"), column("case_id"), column("sent_to"), column("revoked_at"))
        for link_id, sent_to in db.execute(select(links.c.id, links.c.sent_to).where(links.c.case_id == case.id)):
            if sent_to != MARK:
                result.change(f"applicant_link[{link_id}].sent_to", lambda db, i=link_id: db.execute(
                    update(links).where(links.c.id == i).values(sent_to=MARK)))


_BUNDLE_WORDS: dict[str, frozenset[str]] = {}


def vocabulary(db: Session, case: Case) -> set[str]:
    """What the case's process version itself says, so it is nobody's personal data: every
    text of its forms (titles, hints, enum values), every attribute and text of its diagrams
    and decision tables (labels, rule descriptions), quoted literals in their scripts; and
    every agency code. A string in case data is kept only when it equals one of these."""
    sha, files = db.execute(select(ProcessVersion.sha256, ProcessVersion.files)
                            .where(ProcessVersion.id == case.process_version_id)).one()
    if sha not in _BUNDLE_WORDS:  # versions never change: read each once per process
        _BUNDLE_WORDS[sha] = frozenset(_bundle_words(files or {}))
    return {*_BUNDLE_WORDS[sha], *db.scalars(select(Agency.code)), *(case.agencies or [])}


def _bundle_words(files: dict[str, str]) -> set[str]:
    words: set[str] = set()
    for name, text in files.items():
        if name.endswith(".json"):
            _collect_strings(json.loads(text), words)
        elif name.endswith((".bpmn", ".dmn")):
            words.update(_QUOTED_CODE.findall(text))
            for element in parse_xml(text, name).iter():
                words.update(value.strip() for value in element.attrib.values())
                if isinstance(element.text, str) and element.text.strip():
                    words.add(element.text.strip())
    return words


def _collect_strings(value: Any, words: set[str]) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _collect_strings(item, words)
    elif isinstance(value, list):
        for item in value:
            _collect_strings(item, words)
    elif isinstance(value, str):
        words.add(value.strip())
