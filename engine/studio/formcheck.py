"""Form checks: each form is a JSON Schema 2020-12 object schema, and its `x-ui` hints (read by
web/formrender.py) name properties that exist."""
from __future__ import annotations

import json
from typing import Any, Iterator

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from .problems import Problem

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
WIDGETS = frozenset({"text", "textarea", "date", "email", "select", "radios", "checkboxes", "add-another", "file"})
# x-ui keys holding {property name: ...} on an object schema.
KEYED_HINTS = ("widgets", "labels", "item_labels", "messages")
KNOWN_HINTS = frozenset({"order", "widget", "item_label", "context", *KEYED_HINTS})


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
    context = ui.get("context", [])
    if not (isinstance(context, list) and all(isinstance(item, dict) and isinstance(item.get("key"), str)
                                              and isinstance(item.get("title"), str) for item in context)):
        yield path, 'x-ui.context must be a list of {"key": case data name, "title": heading} shown beside the form'
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
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
