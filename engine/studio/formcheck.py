"""Form checks: each form is a JSON Schema 2020-12 object schema, and its `x-ui` hints (read by
web/formrender.py) name properties that exist."""
from __future__ import annotations

import json
import re
from typing import Any, Iterator

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from ..evidence import CASE_FACTS, KINDS
from .problems import Problem

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
WIDGETS = frozenset({"text", "textarea", "date", "email", "select", "radios", "checkboxes", "add-another", "file"})
# x-ui keys holding {property name: ...} on an object schema.
KEYED_HINTS = ("widgets", "labels", "item_labels", "messages", "prefill")
KNOWN_HINTS = frozenset({"order", "widget", "item_label", "context", "submit", "options", *KEYED_HINTS})
# Named option lists a field may offer (x-ui.options); the task page fills them (web/tasks.py _choices).
OPTION_LISTS = frozenset({"agencies"})
SUBMIT_MAX = 60
# Members each kind of x-ui.context item may have (engine/evidence.py describes them).
CONTEXT_MEMBERS = {
    "data": {"kind", "title", "key", "show", "labels", "heading", "agencies", "words"},
    "threshold": {"kind", "title", "result"},
    "timeline": {"kind", "title"},
    "actions": {"kind", "title"},
    "facts": {"kind", "title", "rows"},
}
_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")


def load_form(file: str, text: str) -> tuple[dict | None, list[Problem]]:
    """The parsed schema (None when unusable) and its problems under rule form-json-schema."""
    def problem(message: str) -> Problem:
        return Problem(file, None, "form-json-schema", message)

    try:
        schema = json.loads(text)
    except ValueError as exc:
        return None, [problem(f"not valid JSON: {exc}")]
    if not isinstance(schema, dict):
        return None, [problem("a form must be a JSON object (a JSON Schema)")]
    problems = []
    if schema.get("$schema", DRAFT_2020_12) != DRAFT_2020_12:
        problems.append(problem(f"$schema must be {DRAFT_2020_12}"))
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        return None, [*problems, problem(f"not a valid JSON Schema at {where}: {exc.message}")]
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        problems.append(problem('a form is an object schema: "type": "object" with "properties"'))
    return schema, problems


def ui_problems(file: str, schema: dict) -> list[Problem]:
    return [Problem(file, path, "form-ui-hints", message) for path, message in _walk(schema, "")]


def _walk(schema: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(schema, dict):
        if "x-ui" in schema:
            yield from _hints(schema, path or "/")
        for key, value in schema.items():
            if key != "x-ui":
                yield from _walk(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from _walk(value, f"{path}/{index}")


def _hints(schema: dict, path: str) -> Iterator[tuple[str, str]]:
    ui = schema["x-ui"]
    if not isinstance(ui, dict):
        yield path, "x-ui must be an object"
        return
    for key in ui:
        if key not in KNOWN_HINTS:
            yield path, f"x-ui.{key} is not a hint the form renderer reads ({', '.join(sorted(KNOWN_HINTS))})"
    yield from ((path, message) for message in _context_problems(ui.get("context", [])))
    if "submit" in ui and not (isinstance(ui["submit"], str) and 0 < len(ui["submit"].strip()) <= SUBMIT_MAX):
        yield path, f"x-ui.submit is the button's words: text of 1 to {SUBMIT_MAX} characters"
    options = ui.get("options", {})
    if isinstance(options, str):
        options = {"": options}  # a field's own x-ui names its list directly
    if not isinstance(options, dict):
        yield path, "x-ui.options must name an option list (for example \"agencies\") or map property names to one"
        options = {}
    for name, source in options.items():
        if source not in OPTION_LISTS:
            where = f"x-ui.options.{name}" if name else "x-ui.options"
            yield path, f"{where} is {source!r}; the option lists are: {', '.join(sorted(OPTION_LISTS))}"
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    for name in options:
        if name and name not in properties:
            yield path, f"x-ui.options names {name!r}, which is not a property of this form"
    prefill = ui.get("prefill", {})
    for name, source in prefill.items() if isinstance(prefill, dict) else ():
        if not (isinstance(source, str) and _PATH.match(source)):
            yield path, (f"x-ui.prefill.{name} must be a path into the task's data, names joined by dots "
                         f"(for example \"incidents\" or \"action.updates\")")
    order = ui.get("order", [])
    if not isinstance(order, list):
        yield path, "x-ui.order must be a list of property names"
        order = []
    for name in order:
        if name not in properties:
            yield path, f"x-ui.order names {name!r}, which is not a property of this form"
    for name in {n for n in order if isinstance(n, str) and order.count(n) > 1}:
        yield path, f"x-ui.order names {name!r} more than once"
    for hint in KEYED_HINTS:
        value = ui.get(hint, {})
        if not isinstance(value, dict):
            yield path, f"x-ui.{hint} must be an object keyed by property name"
            continue
        for name in value:
            if name not in properties:
                yield path, f"x-ui.{hint} names {name!r}, which is not a property of this form"
    for name, widget in (ui.get("widgets") or {}).items() if isinstance(ui.get("widgets"), dict) else ():
        if widget not in WIDGETS:
            yield path, f"x-ui.widgets.{name} is {widget!r}; known widgets: {', '.join(sorted(WIDGETS))}"
    if "widget" in ui and ui["widget"] not in WIDGETS:
        yield path, f"x-ui.widget is {ui['widget']!r}; known widgets: {', '.join(sorted(WIDGETS))}"
    labels = ui.get("labels") if isinstance(ui.get("labels"), dict) else {}
    for name, choices in labels.items():
        prop = properties.get(name)
        if not isinstance(prop, dict) or not isinstance(choices, dict):
            continue
        items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
        values = prop.get("enum") or items.get("enum")
        if prop.get("type") == "boolean":
            values = [True, False]
        if values:
            known = {_as_label_key(v) for v in values}
            for key in choices:
                if key not in known:
                    yield path, f"x-ui.labels.{name} labels {key!r}, which is not one of its options"


def _as_label_key(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _context_problems(context: Any) -> Iterator[str]:
    """x-ui.context: what the task page shows beside the form (the vocabulary of engine/evidence.py)."""
    if not isinstance(context, list):
        yield "x-ui.context must be a list of items shown beside the form, each with a title"
        return
    for number, item in enumerate(context, start=1):
        where = f"x-ui.context item {number}"
        if not isinstance(item, dict):
            yield f"{where} must be an object with a title"
            continue
        kind = item.get("kind", "data")
        if kind not in KINDS:
            yield f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}"
            continue
        if not (isinstance(item.get("title"), str) and item["title"].strip()):
            yield f"{where} needs a title: the heading shown above it"
        for member in sorted(set(item) - CONTEXT_MEMBERS[kind]):
            yield f"{where}: {member!r} is not read for kind {kind!r} ({', '.join(sorted(CONTEXT_MEMBERS[kind]))})"
        for member in ("key", "result") if kind in ("data", "threshold") else ():
            if member in CONTEXT_MEMBERS[kind] and not (isinstance(item.get(member), str) and _PATH.match(item[member])):
                yield f"{where}: {member} must be a path into the task's data, names joined by dots"
        for member in ("show", "agencies"):
            if member in item and not (isinstance(item[member], list) and all(isinstance(m, str) for m in item[member])):
                yield f"{where}: {member} must be a list of member names"
        if "heading" in item and not isinstance(item["heading"], str):
            yield f"{where}: heading must be a member name"
        for member, what in (("labels", "member names"), ("words", "stored values")):
            if member in item and not (isinstance(item[member], dict)
                                       and all(isinstance(v, str) for v in item[member].values())):
                yield f"{where}: {member} must map {what} to words"
        if kind == "facts":
            yield from _fact_problems(where, item.get("rows"))


def _fact_problems(where: str, rows: Any) -> Iterator[str]:
    if not isinstance(rows, list) or not rows:
        yield f"{where}: rows must be a list of {{\"label\", and one of \"key\", \"case\", \"letter\"}}"
        return
    for number, row in enumerate(rows, start=1):
        at = f"{where}, row {number}"
        if not isinstance(row, dict) or not (isinstance(row.get("label"), str) and row["label"].strip()):
            yield f"{at} needs a label"
            continue
        sources = [m for m in ("key", "case", "letter") if m in row]
        if len(sources) != 1 or set(row) - {"label", "key", "case", "letter"}:
            yield f"{at} must have a label and exactly one of key, case, letter"
        elif "key" in row and not (isinstance(row["key"], str) and _PATH.match(row["key"])):
            yield f"{at}: key must be a path into the task's data, names joined by dots"
        elif "case" in row and row["case"] not in CASE_FACTS:
            yield f"{at}: case is {row['case']!r}; the case facts are: {', '.join(CASE_FACTS)}"
        elif "letter" in row and not (isinstance(row["letter"], str) and row["letter"]
                                      or isinstance(row["letter"], list) and row["letter"]
                                      and all(isinstance(t, str) and t for t in row["letter"])):
            yield f"{at}: letter must name a letter template, or list several"
