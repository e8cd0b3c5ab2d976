"""Editing a form's JSON Schema field by field, as a process owner sees a form.

A form's top-level fields are listed in the order the task page shows them (`x-ui.order`
first, then the rest). Each field has a title (label), a hint (`description`), a type, whether
it is required and, for choices, its options (`enum`, with their words in `x-ui.labels`). The
types offered are the ones the task page renders with one GOV.UK component each:

| type | schema |
| --- | --- |
| text | `"type": "string"` (at most 500 characters, so it stays a one-line input) |
| textarea | `"type": "string"` with `x-ui.widgets` `textarea` |
| number | `"type": "number"` (a field that already was an `integer` stays one) |
| date | `"type": "string", "format": "date"` |
| boolean | `"type": "boolean"` (yes or no) |
| choice | `"type": "string", "enum": [...]` with `x-ui.widgets` `radios` (or `select` if it was) |

Fields of other kinds (lists, groups, email, checkboxes) keep their type here; their title, hint,
required flag and position can still change. Every edit returns a new schema and never
changes the one given; the result is checked with the studio's own form rules
(engine/studio/formcheck.py) before anyone saves it.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field

from engine.studio.dmncheck import reserved_names
from engine.studio.formcheck import SUBMIT_MAX, load_form, ui_problems

TYPES = {
    "text": "Text (one line)",
    "textarea": "Long text",
    "number": "Number",
    "date": "Date",
    "boolean": "Yes or no",
    "choice": "Choice from a list",
}
SHORT_TEXT = 500  # formrender shows longer strings as a textarea
LONG_TEXT = 5000
# Keys a field keeps only while its type stays the same.
TYPE_KEYS = ("type", "format", "enum", "const", "default", "examples", "minLength", "maxLength", "pattern",
             "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "items", "properties",
             "required", "minItems", "maxItems")
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")
TYPE_SCHEMAS = {
    "text": {"type": "string", "maxLength": SHORT_TEXT},
    "textarea": {"type": "string", "maxLength": LONG_TEXT},
    "number": {"type": "number"},
    "date": {"type": "string", "format": "date"},
    "boolean": {"type": "boolean"},
    "choice": {"type": "string"},
}


class EditRefused(ValueError):
    """The edit cannot be made; `errors` are [{"field": input name, "message"}]."""

    def __init__(self, errors: list[dict]):
        super().__init__("; ".join(e["message"] for e in errors))
        self.errors = errors


@dataclass
class Field:
    name: str
    title: str
    hint: str
    type: str | None  # a key of TYPES, or None for a kind this editor does not change
    kind_words: str
    required: bool
    options: list[tuple[str, str]] = field(default_factory=list)
    position: int = 0

    @property
    def options_text(self) -> str:
        return "\n".join(f"{value} | {label}" for value, label in self.options)


def _ui(schema: dict) -> dict:
    ui = schema.get("x-ui")
    return ui if isinstance(ui, dict) else {}


def _humanise(value) -> str:
    text = str(value).replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


def order_of(schema: dict) -> list[str]:
    """Field names in the order the task page shows them."""
    properties = schema.get("properties") or {}
    order = [n for n in _ui(schema).get("order", []) if n in properties]
    return order + [n for n in properties if n not in order]


def _widget(schema: dict, name: str) -> str | None:
    prop = (schema.get("properties") or {}).get(name) or {}
    return _ui(prop).get("widget") or (_ui(schema).get("widgets") or {}).get(name)


def _labels(schema: dict, name: str) -> dict:
    return {str(k): str(v) for k, v in ((_ui(schema).get("labels") or {}).get(name) or {}).items()}


def type_of(schema: dict, name: str) -> str | None:
    prop = (schema.get("properties") or {}).get(name)
    if not isinstance(prop, dict):
        return None
    kind = prop.get("type")
    if isinstance(kind, list):
        return None
    widget = _widget(schema, name)
    if kind == "boolean":
        return "boolean"
    if kind in ("number", "integer"):
        return "number"
    if kind == "string" or (kind is None and ("enum" in prop or "format" in prop)):
        if "enum" in prop:
            return "choice"
        if prop.get("format") == "date" or widget == "date":
            return "date"
        if prop.get("format") or widget not in (None, "text", "textarea"):
            return None  # email, select without options...
        if widget == "textarea" or (prop.get("maxLength") or 0) > SHORT_TEXT:
            return "textarea"
        return "text"
    return None


def _kind_words(prop: dict, widget: str | None) -> str:
    kind = prop.get("type")
    if widget == "file":
        return "File upload"
    if kind == "array":
        return "List"
    if kind == "object":
        return "Group of fields"
    if prop.get("format") == "email":
        return "Email address"
    return "Other"


def fields(schema: dict) -> list[Field]:
    found = []
    required = set(schema.get("required") or [])
    for position, name in enumerate(order_of(schema), start=1):
        prop = (schema.get("properties") or {}).get(name)
        prop = prop if isinstance(prop, dict) else {}
        kind = type_of(schema, name)
        labels = _labels(schema, name)
        options = [(str(v), labels.get(str(v), _humanise(v))) for v in prop.get("enum") or []]
        found.append(Field(name=name, title=str(prop.get("title") or _humanise(name)),
                           hint=str(prop.get("description") or ""), type=kind,
                           kind_words=TYPES[kind] if kind else _kind_words(prop, _widget(schema, name)),
                           required=name in required, options=options, position=position))
    return found


def field_of(schema: dict, name: str) -> Field:
    for item in fields(schema):
        if item.name == name:
            return item
    raise KeyError(name)


def parse_options(text: str) -> list[tuple[str, str]]:
    """One option a line: `value | Label`, or just `Label` (its value made from the words)."""
    options = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        value, bar, label = line.partition("|")
        value, label = value.strip(), label.strip()
        if not bar:
            label, value = value, _slug(value)
        options.append((value, label or _humanise(value)))
    return options


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40]


# ----- edits -------------------------------------------------------------------------------
def edit_field(schema: dict, name: str, answers: dict) -> dict:
    """The schema with field `name` changed as the owner answered (title, hint, type, required,
    options, position)."""
    if name not in (schema.get("properties") or {}):
        raise EditRefused([{"field": "title", "message": f"The form has no field {name}"}])
    result = copy.deepcopy(schema)
    errors: list[dict] = []
    _apply(result, name, answers, errors, new=False)
    return _checked(result, errors)


def add_field(schema: dict, answers: dict) -> tuple[dict, str]:
    """The schema with a new field; (schema, its name). The name is the one given or made from
    the title."""
    result = copy.deepcopy(schema)
    errors: list[dict] = []
    name = (answers.get("name") or "").strip() or _slug(answers.get("title") or "")
    properties = result.setdefault("properties", {})
    if not name:
        errors.append({"field": "name", "message": "Enter a field name, or a title to make one from"})
    elif not NAME_PATTERN.fullmatch(name):
        errors.append({"field": "name", "message": "A field name starts with a letter and has only lower-case "
                                                   "letters, digits and underscores (at most 40)"})
    elif name in properties:
        errors.append({"field": "name", "message": f"The form already has a field called {name}"})
    elif name in reserved_names():
        errors.append({"field": "name", "message": f"{name} is the name of a script function; choose another"})
    if errors:
        _apply(copy.deepcopy(result), "__new__", answers, errors, new=True, dry=True)
        raise EditRefused(errors)
    properties[name] = {}
    answers = {**answers, "position": answers.get("position") or str(len(properties))}
    _apply(result, name, answers, errors, new=True)
    return _checked(result, errors), name


def remove_field(schema: dict, name: str) -> dict:
    if name not in (schema.get("properties") or {}):
        raise EditRefused([{"field": "name", "message": f"The form has no field {name}"}])
    if _used_in_conditions(schema, name):
        raise EditRefused([{"field": "name", "message": f"{name} decides which other questions are asked "
                                                        "(a condition of the form), so it cannot be removed here"}])
    result = copy.deepcopy(schema)
    del result["properties"][name]
    if name in (result.get("required") or []):
        result["required"] = [n for n in result["required"] if n != name]
        if not result["required"]:
            del result["required"]
    ui = _ui(result)
    if "order" in ui:
        ui["order"] = [n for n in ui["order"] if n != name]
    for hint in ("widgets", "labels", "item_labels", "messages"):
        if isinstance(ui.get(hint), dict):
            ui[hint].pop(name, None)
    return _checked(result, [])


def _used_in_conditions(schema: dict, name: str) -> bool:
    rest = {k: v for k, v in schema.items()
            if k not in ("properties", "x-ui", "required", "title", "description", "$schema", "type",
                         "additionalProperties")}
    return f'"{name}"' in json.dumps(rest)


def _apply(schema: dict, name: str, answers: dict, errors: list[dict], *, new: bool, dry: bool = False) -> None:
    properties = schema.setdefault("properties", {})
    prop = properties.get(name, {}) if not dry else {}
    before = type_of(schema, name) if not new and not dry else None

    title = (answers.get("title") or "").strip()
    hint = (answers.get("hint") or "").strip()
    if not title:
        errors.append({"field": "title", "message": "Enter the question or label people see"})
    elif len(title) > 300:
        errors.append({"field": "title", "message": "The label must be 300 characters or fewer"})
    if len(hint) > 1000:
        errors.append({"field": "hint", "message": "The hint must be 1000 characters or fewer"})

    kind = answers.get("type") or before
    if kind not in TYPES and not (kind is None and not new):
        errors.append({"field": "type", "message": "Choose the kind of answer"})
        kind = before
    options = parse_options(answers.get("options", "")) if kind == "choice" else []
    if kind == "choice":
        values = [v for v, _label in options]
        if len(options) < 2:
            errors.append({"field": "options", "message": "A choice needs at least 2 options, one a line"})
        elif any(not v for v in values):
            errors.append({"field": "options", "message": "Each option needs a value before the |"})
        elif len(set(values)) != len(values):
            errors.append({"field": "options", "message": "Each option needs its own value"})
        elif any(len(v) > 100 or len(label) > 300 for v, label in options):
            errors.append({"field": "options", "message": "Options must be shorter (values 100, labels 300 "
                                                          "characters at most)"})

    order = [n for n in order_of(schema) if n != name]
    position_text = str(answers.get("position") or "").strip()
    position = len(order) + 1
    if position_text:
        if not position_text.isdigit() or not 1 <= int(position_text) <= len(order) + 1:
            errors.append({"field": "position",
                           "message": f"Enter a position from 1 to {len(order) + 1}"})
        else:
            position = int(position_text)
    if errors or dry:
        return

    if kind is not None and kind != before and not {kind, before} <= {"text", "textarea"}:
        # A new kind of answer: constraints of the old one (lengths, formats, options) would not fit.
        prop = {k: v for k, v in prop.items() if k not in TYPE_KEYS}
        prop.update(TYPE_SCHEMAS[kind])
    if kind == "choice":
        prop["type"] = "string"
        prop["enum"] = [v for v, _label in options]
    prop["title"] = title
    if hint:
        prop["description"] = hint
    else:
        prop.pop("description", None)
    # Title and hint first, as the shipped forms write them.
    properties[name] = {"title": prop.pop("title"), **({"description": prop.pop("description")}
                                                        if "description" in prop else {}), **prop}

    required = [n for n in schema.get("required") or [] if n != name]
    if answers.get("required") == "yes":
        required.append(name)
    if required:
        schema["required"] = required
    else:
        schema.pop("required", None)

    ui = schema.setdefault("x-ui", {})
    order.insert(position - 1, name)
    ui["order"] = order
    _set_widget(schema, name, kind, before)
    labels = ui.setdefault("labels", {})
    if kind == "choice":
        labels[name] = {value: label for value, label in options}
    elif kind != before and kind is not None:
        labels.pop(name, None)
    if not labels:
        ui.pop("labels", None)


def _set_widget(schema: dict, name: str, kind: str | None, before: str | None) -> None:
    ui = schema.setdefault("x-ui", {})
    widgets = ui.setdefault("widgets", {})
    prop = schema["properties"][name]
    own_ui = prop.get("x-ui") if isinstance(prop.get("x-ui"), dict) else None
    if own_ui is not None:
        own_ui.pop("widget", None)  # one place for the widget: the form's x-ui.widgets
        if not own_ui:
            del prop["x-ui"]
    current = widgets.get(name)
    if kind == "textarea":
        widgets[name] = "textarea"
    elif kind == "choice":
        widgets[name] = current if current in ("radios", "select") else "radios"
    elif kind in ("text", "number", "date", "boolean"):
        widgets.pop(name, None)
        if kind == "text" and (prop.get("maxLength") or 0) > SHORT_TEXT:
            prop["maxLength"] = SHORT_TEXT
    if not widgets:
        ui.pop("widgets", None)


def submit_text(schema: dict) -> str:
    """What the form's button says now (`x-ui.submit`); empty when the task page's default is used."""
    text = (schema.get("x-ui") or {}).get("submit")
    return text if isinstance(text, str) else ""


def set_submit(schema: dict, text: str) -> dict:
    """The form with its button saying `text` (`x-ui.submit`); empty text goes back to the default."""
    changed = copy.deepcopy(schema)
    ui = changed.setdefault("x-ui", {})
    text = " ".join((text or "").split())
    if not text:
        ui.pop("submit", None)
        return _checked(changed, [])
    if len(text) > SUBMIT_MAX:
        raise EditRefused([{"field": "submit", "message": f"The button text must be {SUBMIT_MAX} characters or fewer"}])
    ui["submit"] = text
    return _checked(changed, [])


def _checked(schema: dict, errors: list[dict]) -> dict:
    if errors:
        raise EditRefused(errors)
    problems, name = [], "form"
    loaded, found = load_form(name, json.dumps(schema))
    problems.extend(found)
    if loaded is not None:
        problems.extend(ui_problems(name, loaded))
    if problems:
        raise EditRefused([{"field": "title", "message": f"The form would not be valid: {p.message}"}
                           for p in problems])
    return schema


def dumps(schema: dict) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
