"""DMN checks: a decision table reads only variables that exist when it runs, and every output
it writes is read by something.

The threshold table is special: besides running inside `threshold_check`, its input
expressions are evaluated by the engine on their own (engine/runtime.py
`evaluate_threshold_inputs`) with only `threshold_incidents` and `application_date` in
scope, to store the counts on the case and explain each incident; the case page shows the
counts under the input ids `occasions`, `reported_in_last_month` and `hate_incidents`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache

from lxml import etree

from .bpmnmodel import Diagram, bpmn, local, spiff
from .code import Code, names_read, names_written
from .problems import Problem

THRESHOLD_DECISION = "threshold"
THRESHOLD_CONTEXT = frozenset({"threshold_incidents", "application_date"})
THRESHOLD_INPUT_IDS = ("occasions", "reported_in_last_month", "hate_incidents")
# Task data the engine puts in the first task of a case (engine/service.py apply) besides the
# application form's fields, and what a message start adds (engine/runtime.py send_message).
ENGINE_START_DATA = frozenset({"reference", "received_on", "third_party", "agencies"})


@dataclass
class Decision:
    file: str
    id: str
    name: str
    inputs: list[tuple[str, str]] = field(default_factory=list)  # (input id, expression)
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (output id, name)


def read_decisions(root: etree._Element, file: str) -> list[Decision]:
    decisions = []
    for element in root.iter():
        if not isinstance(element.tag, str) or local(element) != "decision":
            continue
        decision = Decision(file, element.get("id", ""), element.get("name", ""))
        table = next((c for c in element if local(c) == "decisionTable"), None)
        if table is not None:
            for item in table:
                if local(item) == "input":
                    expression = next((c for c in item if local(c) == "inputExpression"), None)
                    text = next((c for c in expression if local(c) == "text"), None) if expression is not None else None
                    decision.inputs.append((item.get("id", ""), (text.text or "").strip() if text is not None else ""))
                elif local(item) == "output":
                    decision.outputs.append((item.get("id", ""), item.get("name", "")))
        decisions.append(decision)
    return decisions


@lru_cache(maxsize=1)
def reserved_names() -> frozenset[str]:
    """Helper and builtin names every script sees (the runtime's own list)."""
    from ..clock import SystemClock
    from ..runtime import CaseRun

    run = CaseRun(None, None, None, SystemClock(), coordinator_email="")  # only its script engine is used
    return frozenset(run.script_engine.environment.reserved_names)


def known_variables(diagrams: list[Diagram], codes: list[Code], forms: dict[str, dict],
                    decisions: list[Decision]) -> set[str]:
    """Every name some part of the bundle can put in task data."""
    known = set(ENGINE_START_DATA)
    for code in codes:
        if code.mode == "exec":
            known |= names_written(code.source)
    for schema in forms.values():
        known |= set((schema.get("properties") or {}) if isinstance(schema, dict) else ())
    for decision in decisions:
        known |= {name for _id, name in decision.outputs if name}
    for diagram in diagrams:
        for element in diagram.root.iter(bpmn("dataInput"), bpmn("dataOutput"), bpmn("property"),
                                         bpmn("dataObject"), bpmn("inputDataItem"), bpmn("outputDataItem")):
            known |= {v for v in (element.get("id"), element.get("name")) if v}
        for element in diagram.root.iter(spiff("messageVariable")):
            known.add((element.text or "").strip())
    return known


def dmn_problems(decisions: list[Decision], diagrams: list[Diagram], codes: list[Code],
                 forms: dict[str, dict], letters: dict[str, str]) -> list[Problem]:
    problems: list[Problem] = []
    reserved = reserved_names()
    known = known_variables(diagrams, codes, forms, decisions)
    called = {(e.text or "").strip() for d in diagrams for e in d.root.iter(spiff("calledDecisionId"))}
    read_anywhere: set[str] = set()
    for code in codes:
        read_anywhere |= names_read(code.source, code.mode)
    letter_text = "\n".join(letters.values())

    for decision in decisions:
        if decision.id not in called:
            problems.append(Problem(decision.file, decision.id, "dmn-decision-used",
                                    "no business rule task calls this decision (calledDecisionId)"))
        scope = THRESHOLD_CONTEXT if decision.id == THRESHOLD_DECISION else known
        for input_id, expression in decision.inputs:
            if not expression:
                problems.append(Problem(decision.file, input_id, "dmn-input-variables", "input has no expression"))
                continue
            for name in sorted(names_read(expression, "eval") - reserved - scope):
                where = ("the threshold counts are computed with only "
                         + " and ".join(sorted(THRESHOLD_CONTEXT)) + " in scope"
                         if decision.id == THRESHOLD_DECISION else "nothing in the bundle sets it")
                problems.append(Problem(decision.file, input_id, "dmn-input-variables",
                                        f"input expression reads {name!r}, which does not exist: {where}"))
        if decision.id == THRESHOLD_DECISION:
            ids = {input_id for input_id, _ in decision.inputs}
            for needed in THRESHOLD_INPUT_IDS:
                if needed not in ids:
                    problems.append(Problem(decision.file, decision.id, "dmn-input-variables",
                                            f"the threshold table needs an input with id {needed!r}: "
                                            "the case page shows that count"))
        for output_id, name in decision.outputs:
            if not name:
                problems.append(Problem(decision.file, output_id, "dmn-output-used", "output has no name"))
            elif name not in read_anywhere and not re.search(rf"\b{re.escape(name)}\b", letter_text):
                problems.append(Problem(decision.file, output_id, "dmn-output-used",
                                        f"output {name!r} is never read by a script, condition or letter"))
    return problems


def form_schemas(files: dict[str, str]) -> dict[str, dict]:
    """Parsed forms, quietly skipping broken ones (the form rules report those)."""
    found = {}
    for name, text in files.items():
        if name.startswith("forms/") and name.endswith(".json"):
            try:
                found[name] = json.loads(text)
            except ValueError:
                continue
    return found
