"""Statutory facts: which element of a bundle records what the reports count.

A process owner marks an element with the property `statutoryFact` (a `spiffworkflow:property`,
like `formJsonSchemaFilename`); the reports find their rows through the elements carrying each
fact, in every published version, never through an element id held in Python. A rename in the
studio keeps the element's properties, so the figures follow it.

| fact | on | the reports read |
| --- | --- | --- |
| `threshold_decided` | the user task confirming the threshold decision | its due date: the target from receipt to decision |
| `panel_arranged` | the user task arranging the panel | its due date: the target from decision to panel |
| `review_carried_out` | the user task recording the panel outcome | its completions: reviews carried out, with recommendations |
| `outcome_letter_sent` | the script task sending the outcome letter | the letter it sends, and its due date: the target from panel to letter |
| `escalation_decided` | the user task deciding an escalation | its completions, and its lane for the decisions waiting |
| `escalation_not_upheld_letter_sent` | the script task writing "not upheld" | the letter it sends |

A due date that sets a target is written `add_working_days(<from>, <n>)` (engine/studio/duerules.py):
n is the target in working days. The studio refuses a bundle in which a fact is missing, sits on
the wrong kind of element, or lacks what the reports read from it (`statutory_fact_problems`).

Versions published before bundles declared facts declare none. For them, and only for them,
`LEGACY_FACT_ELEMENTS` names the elements of the diagrams shipped then: the one place Python
names diagram elements for the reports.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

from .checks import letters_sent

if TYPE_CHECKING:
    from .versions import CompiledVersion

FACT_PROPERTY = "statutoryFact"


@dataclass(frozen=True)
class FactRule:
    element_kind: str  # "user task" or "script task"
    needed_by: str  # what relies on it, in the words of the refusal
    target: bool = False  # its due date sets a local target
    sends_letter: bool = False  # its script sends the letter the reports look for


FACTS: dict[str, FactRule] = {
    "threshold_decided": FactRule(
        "user task", "the dashboard's target from receipt to the threshold decision (its due date)", target=True),
    "panel_arranged": FactRule(
        "user task", "the dashboard's target from the threshold decision to the panel (its due date)", target=True),
    "review_carried_out": FactRule(
        "user task", "the statutory figures 'Case reviews carried out' and 'Case reviews resulting in "
        "recommendations', and the dashboard's panel timings"),
    "outcome_letter_sent": FactRule(
        "script task", "the dashboard's time from the panel to the outcome letter (the letter its script "
        "sends, and its due date as the target)", target=True, sends_letter=True),
    "escalation_decided": FactRule(
        "user task", "the dashboard's escalation decisions and the decisions waiting now"),
    "escalation_not_upheld_letter_sent": FactRule(
        "script task", "the dashboard's count of escalations not upheld (the letter its script sends)",
        sends_letter=True),
}

#: Versions published before bundles declared their facts: the elements of the diagrams shipped
#: then that recorded each fact. Used only for a version in which no element declares a fact.
LEGACY_FACT_ELEMENTS: dict[str, str] = {
    "threshold_decided": "confirm_threshold",
    "panel_arranged": "schedule_panel",
    "review_carried_out": "panel_outcome",
    "outcome_letter_sent": "start_actions",
    "escalation_decided": "decide_escalation",
    "escalation_not_upheld_letter_sent": "send_not_upheld",
}
#: The targets those diagrams held in no due date (the outcome letter: 5 working days after the panel).
LEGACY_TARGETS: dict[str, int] = {"outcome_letter_sent": 5}


@dataclass(frozen=True)
class FactElement:
    """One element of a version that records a fact."""

    fact: str
    process: str
    element: str  # its BPMN id (a user task's is `detail["task"]` of the audit row completing it)
    file: str | None
    is_user_task: bool
    lane: str | None
    due_date: str | None
    letters: tuple[str, ...]  # templates its script sends
    target_days: int | None  # from its due date; for legacy versions, LEGACY_TARGETS when it has none
    declared: bool  # False: found through LEGACY_FACT_ELEMENTS


def _task_specs(specs: dict[str, tuple[Any, dict]]) -> Iterator[tuple[str, Any, Any]]:
    """(process id, process spec, task spec) over every process once."""
    seen: set[str] = set()
    for spec, subprocess_specs in specs.values():
        for process in [spec, *subprocess_specs.values()]:
            if process.name in seen:
                continue
            seen.add(process.name)
            for task_spec in process.task_specs.values():
                yield process.name, process, task_spec


def _properties(task_spec) -> dict:
    return (getattr(task_spec, "extensions", None) or {}).get("properties", {}) or {}


def read_fact_elements(specs: dict[str, tuple[Any, dict]]) -> tuple[FactElement, ...]:
    """The elements carrying a fact: those that declare one, or, when none does (a version published
    before facts were declared), the elements named in LEGACY_FACT_ELEMENTS."""
    from .studio.duerules import read_due_rule  # late import: the studio package imports versions

    declared = [(properties[FACT_PROPERTY], process_id, process, task_spec)
                for process_id, process, task_spec in _task_specs(specs)
                if (properties := _properties(task_spec)).get(FACT_PROPERTY)]
    legacy = not declared
    if legacy:
        fact_of = {element: fact for fact, element in LEGACY_FACT_ELEMENTS.items()}
        declared = [(fact_of[bpmn_id], process_id, process, task_spec)
                    for process_id, process, task_spec in _task_specs(specs)
                    if (bpmn_id := getattr(task_spec, "bpmn_id", None)) in fact_of]
    found = []
    for fact, process_id, process, task_spec in declared:
        due_date = _properties(task_spec).get("dueDate") or None
        rule = read_due_rule(due_date)
        target = rule.days if rule is not None else (LEGACY_TARGETS.get(fact) if legacy else None)
        found.append(FactElement(
            fact=fact.strip(), process=process_id, element=task_spec.bpmn_id, file=getattr(process, "file", None),
            is_user_task=bool(getattr(task_spec, "manual", False)), lane=getattr(task_spec, "lane", None),
            due_date=due_date, letters=tuple(letters_sent(getattr(task_spec, "script", None))),
            target_days=target, declared=not legacy))
    return tuple(sorted(found, key=lambda e: (e.fact, e.process, e.element)))


def statutory_fact_problems(version: "CompiledVersion") -> list[dict]:
    """A bundle may be published only if every fact the reports need is declared on an element that
    gives them what they read from it (studio rule `statutory-fact`)."""
    problems = []

    def problem(element: FactElement | None, message: str) -> None:
        problems.append({"file": element.file if element else None, "element": element.element if element else None,
                         "rule": "statutory-fact", "message": message})

    elements = [e for e in version.statutory_facts if e.declared]
    for element in elements:
        rule = FACTS.get(element.fact)
        if rule is None:
            problem(element, f"{FACT_PROPERTY} {element.fact!r} is not one of {', '.join(FACTS)}")
            continue
        if (rule.element_kind == "user task") != element.is_user_task:
            problem(element, f"{FACT_PROPERTY} {element.fact!r} belongs on a {rule.element_kind}, which "
                             f"{rule.needed_by} rely on")
        if rule.target and element.target_days is None:
            problem(element, f"{FACT_PROPERTY} {element.fact!r} needs a due date written "
                             f"add_working_days(<from>, <working days>): {rule.needed_by} read it")
        if rule.sends_letter and not element.letters:
            problem(element, f"{FACT_PROPERTY} {element.fact!r} needs a script that sends a letter "
                             f"(send_letter(...)): {rule.needed_by} look for it")
    declared = {e.fact for e in elements}
    for fact, rule in FACTS.items():
        if fact not in declared:
            problem(None, f"no element declares {FACT_PROPERTY} {fact!r}, which {rule.needed_by} need: set it "
                          f"on the {rule.element_kind} that records it")
    return problems
