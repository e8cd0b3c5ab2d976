"""Static checks of a compiled bundle: run before anything is published.

Every user task needs a form from the bundle and a role lane (and an agency rule in the
partner lane); every script, condition and expression must pass the sandbox's check; every
letter a script sends must have a template.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterator

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from .letters import check_template
from .sandbox import UnsafeScript, check_source

if TYPE_CHECKING:
    from .versions import CompiledVersion

ROLES = ("coordinator", "partner", "chair", "reviewer", "applicant", "victim")
_LETTER_CALL = re.compile(r"""\b(?:send_letter|notify_agency)\((?:[^,()]*,\s*)?["']([a-z0-9_]+)["']""")


def letters_sent(script: str | None) -> list[str]:
    """The templates a script names in its send_letter and notify_agency calls, in order."""
    return _LETTER_CALL.findall(script or "")


def _sources(task_spec) -> Iterator[tuple[str, str, str]]:
    """(what, source, mode) for every piece of code attached to a task spec."""
    script = getattr(task_spec, "script", None)
    if script:
        yield "script", script, "exec"
    for attribute in ("prescript", "postscript"):
        if getattr(task_spec, attribute, None):
            yield attribute, getattr(task_spec, attribute), "exec"
    for condition, _target in getattr(task_spec, "cond_task_specs", []) or []:
        text = condition.args[0] if hasattr(condition, "args") else condition  # SpiffWorkflow wraps it
        if text:
            yield "condition", text, "eval"
    event = getattr(task_spec, "event_definition", None)
    if isinstance(event, TimerEventDefinition) and event.expression:
        yield "timer", event.expression, "eval"
    properties = getattr(task_spec, "extensions", {}).get("properties", {})
    for name in ("dueDate", "agency"):
        if properties.get(name):
            yield name, properties[name], "eval"
    for name in ("loop_condition", "condition"):
        value = getattr(task_spec, name, None)
        if isinstance(value, str) and value:
            yield name, value, "eval"


def check_bundle(version: "CompiledVersion") -> list[dict]:
    problems: list[dict] = []
    seen: set[str] = set()
    for process_id, (spec, subprocess_specs) in version.specs.items():
        for process in [spec, *subprocess_specs.values()]:
            if process.name in seen:
                continue
            seen.add(process.name)
            for task_spec in process.task_specs.values():
                element = getattr(task_spec, "bpmn_id", None) or task_spec.name
                file = getattr(process, "file", None)
                for what, source, mode in _sources(task_spec):
                    try:
                        check_source(source, mode)
                    except UnsafeScript as exc:
                        problems.append({"file": file, "element": element, "rule": "sandbox", "message": f"{what}: {exc}"})
                    except SyntaxError as exc:
                        problems.append({"file": file, "element": element, "rule": "sandbox",
                                         "message": f"{what}: syntax error: {exc.msg}"})
                    if what == "script":
                        for template in letters_sent(source):
                            if template not in version.letters:
                                problems.append({"file": file, "element": element, "rule": "letter-template",
                                                 "message": f"script sends letter {template!r}, which has no template"})
                if getattr(task_spec, "manual", False):
                    problems.extend(_check_user_task(version, file, element, task_spec))
    for name, source in version.letters.items():
        error = check_template(source)
        if error:
            problems.append({"file": f"processes/letters/{name}.txt", "element": None, "rule": "letter-template",
                             "message": error})
    return problems


def _check_user_task(version: "CompiledVersion", file, element, task_spec) -> list[dict]:
    problems = []
    properties = task_spec.extensions.get("properties", {})
    form = properties.get("formJsonSchemaFilename")
    if not form:
        problems.append({"file": file, "element": element, "rule": "user-task-form",
                         "message": "user task has no form (formJsonSchemaFilename)"})
    elif form not in version.forms:
        problems.append({"file": file, "element": element, "rule": "user-task-form",
                         "message": f"form {form!r} is not in forms/"})
    if task_spec.lane not in ROLES:
        problems.append({"file": file, "element": element, "rule": "user-task-role",
                         "message": f"user task must be in a lane named one of {', '.join(ROLES)} (is {task_spec.lane!r})"})
    if task_spec.lane == "partner" and not properties.get("agency"):
        problems.append({"file": file, "element": element, "rule": "partner-task-agency",
                         "message": "partner task needs an 'agency' property"})
    return problems
