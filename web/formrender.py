"""Forms as data: one renderer and one parser for every form in ``forms/``.

A form is a JSON Schema (2020-12) with UI hints under ``"x-ui"``. This module turns it into
GOV.UK Frontend components (through the govuk-frontend-jinja macros), turns a posted form back
into JSON of the schema's types, and turns the engine's validation errors into GOV.UK-style
messages and an error summary.

Public API
----------
``render_fields(schema, values=None, errors=None, *, choices=None, files=None) -> Markup``
    Every top-level field (``x-ui.order`` first, then the other properties), recursively.
    A field with ``x-ui.widget`` "file" (a string, or an array of strings: document ids) is a
    GOV.UK file upload named by the field id, with the files already added listed under it, each
    kept by a hidden input holding its id and removable with a form action; ``files``
    (``FileUploads``) gives their names and the upload rules shown in the hint.
``parse_submission(schema, form) -> (data, form_action)``
    ``form_action`` is ``"add:<list id>"`` / ``"remove:<list id>:<index>"`` when the user pressed
    an add/remove button; the caller then re-renders with ``apply_form_action`` instead of
    validating.
``apply_form_action(schema, data, form_action) -> dict``
``error_summary(errors, schema, *, choices=None) -> list[{"text", "href"}]``
``friendly_message(error, schema, *, choices=None) -> str``

Names and ids are the field's path joined with ``-`` (``applicant-name``, ``actions-0-due``,
``actions-0-due-day``); engine errors use the same path joined with ``/``.
"""
from __future__ import annotations

import ast
import copy
import datetime as dt
import math
import re
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, PrefixLoader
from markupsafe import Markup

__all__ = [
    "ACTION_FIELD",
    "FileUploads",
    "apply_form_action",
    "error_summary",
    "friendly_message",
    "parse_submission",
    "render_fields",
]

ACTION_FIELD = "form-action"
TEMPLATE = "forms/fields.html"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
_GOVUK_PREFIX = "govuk_frontend_jinja"

_MISSING = object()
_DATE_PARTS = ("day", "month", "year")
_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
            ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
            ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"), ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
_DEFAULTED = ("text", "textarea", "email", "number", "select")  # never radios: GOV.UK pre-selects none
_MAX_PLACEHOLDER_ITEMS = 10  # empty slots shown for a list's minItems, at most


# --------------------------------------------------------------------------------------------
# Schema reading
# --------------------------------------------------------------------------------------------

def _type(schema: dict) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((t for t in kind if t != "null"), None)
    if kind is None:
        if "properties" in schema:
            return "object"
        if "items" in schema:
            return "array"
        if "enum" in schema or "format" in schema:
            return "string"
    return kind


def _ui(schema: dict) -> dict:
    ui = schema.get("x-ui") if isinstance(schema, dict) else None
    return ui if isinstance(ui, dict) else {}


def _property_order(schema: dict) -> list[str]:
    props = schema.get("properties") or {}
    order = [name for name in _ui(schema).get("order", []) if name in props]
    return order + [name for name in props if name not in order]


def _requirement(obj_schema: dict, name: str) -> tuple[bool, bool]:
    """(always required, required under some condition: if/then, anyOf, oneOf...)."""
    always = name in (obj_schema.get("required") or [])
    sometimes = False

    def walk(schema: dict, certain: bool) -> None:
        nonlocal always, sometimes
        for key in ("then", "else"):
            sub = schema.get(key)
            if isinstance(sub, dict):
                if name in (sub.get("required") or []):
                    sometimes = True
                walk(sub, False)
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in schema.get(key) or []:
                if not isinstance(sub, dict):
                    continue
                if name in (sub.get("required") or []):
                    if certain and key == "allOf":
                        always = True
                    else:
                        sometimes = True
                walk(sub, certain and key == "allOf")

    walk(obj_schema, True)
    return always, sometimes


def _alternatives(obj_schema: dict, name: str) -> list[str]:
    """Names in the anyOf/oneOf group that lets ``name`` stand in for the others, in order."""
    for key in ("anyOf", "oneOf"):
        branches = [b for b in obj_schema.get(key) or [] if isinstance(b, dict)]
        names = [n for b in branches for n in (b.get("required") or [])]
        if name in names:
            return list(dict.fromkeys(names))
    return []


def _conditional_keyword(obj_schema: dict, name: str, keyword: str) -> list:
    """Values of ``keyword`` for property ``name`` from the field and every conditional branch."""
    found = []
    own = (obj_schema.get("properties") or {}).get(name)
    if isinstance(own, dict) and keyword in own:
        found.append(own[keyword])

    def walk(schema: dict) -> None:
        for key in ("then", "else"):
            if isinstance(schema.get(key), dict):
                sub = schema[key]
                prop = (sub.get("properties") or {}).get(name)
                if isinstance(prop, dict) and keyword in prop:
                    found.append(prop[keyword])
                walk(sub)
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in schema.get(key) or []:
                if isinstance(sub, dict):
                    prop = (sub.get("properties") or {}).get(name)
                    if isinstance(prop, dict) and keyword in prop:
                        found.append(prop[keyword])
                    walk(sub)

    walk(obj_schema)
    return found


def _reveals(obj_schema: dict) -> dict[str, dict[str, list[str]]]:
    """{choice field: {option value: [fields asked only when that option is chosen]}}, read from
    ``if: {properties: {F: {const: V}}}, then: {required: [...]}`` (alone or inside allOf), so the
    renderer can show those fields as a GOV.UK conditional reveal under the option."""
    found: dict[str, dict[str, list[str]]] = {}
    branches = [obj_schema, *[b for b in obj_schema.get("allOf") or [] if isinstance(b, dict)]]
    for branch in branches:
        condition, then = branch.get("if"), branch.get("then")
        if not (isinstance(condition, dict) and isinstance(then, dict)):
            continue
        tested = condition.get("properties") or {}
        if len(tested) != 1:
            continue
        (field, test), = tested.items()
        if not isinstance(test, dict) or "const" not in test:
            continue
        value = test["const"]
        option = ("yes" if value else "no") if isinstance(value, bool) else str(value)
        for name in then.get("required") or []:
            if name != field and name in (obj_schema.get("properties") or {}):
                found.setdefault(field, {}).setdefault(option, []).append(name)
    # A field revealed by two options (or required anyway) stays where it is.
    counts: dict[str, int] = {}
    for options in found.values():
        for names in options.values():
            for name in names:
                counts[name] = counts.get(name, 0) + 1
    return {field: {option: [n for n in names if counts[n] == 1 and not _requirement(obj_schema, n)[0]]
                    for option, names in options.items()}
            for field, options in found.items()}


def _humanise(value: str) -> str:
    text = str(value).replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


def _singular(name: str) -> str:
    words = name.replace("_", " ").replace("-", " ").split()
    if not words:
        return "item"
    last = words[-1]
    if last.endswith("ies") and len(last) > 4:
        last = last[:-3] + "y"
    elif last.endswith("sses"):
        last = last[:-2]
    elif last.endswith("s") and not last.endswith("ss"):
        last = last[:-1]
    return " ".join(words[:-1] + [last]).lower()


def _plural(noun: str) -> str:
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def _article(text: str) -> str:
    return "an" if text[:1].lower() in "aeiou" else "a"


def _lower_first(text: str) -> str:
    if len(text) > 1 and text[1].isupper():  # an acronym such as "MP"
        return text
    return text[:1].lower() + text[1:]


@dataclass
class _Field:
    """One node of a form: a property, or an item of a list."""

    key: str | int
    schema: dict
    path: tuple
    kind: str
    title: str
    hint: str | None
    required: bool
    conditional: bool = False
    parent: dict | None = None  # the object schema holding this property
    labels: dict = dc_field(default_factory=dict)
    widget: str | None = None
    options: list[tuple[str, str]] | None = None
    noun: str | None = None  # for lists: the singular name of one item ("action")
    array: "_Field | None" = None  # for list items: the list
    index: int | None = None

    @property
    def id(self) -> str:
        return "-".join(str(part) for part in self.path)

    @property
    def error_path(self) -> str:
        return "/".join(str(part) for part in self.path)

    @property
    def phrase_title(self) -> str:
        """The title messages name: a plain item of a list is named by the list's title."""
        if self.array is not None and self.kind != "item":
            return self.array.title
        return self.title


def _choices_for(path: tuple, choices: dict | None) -> list[tuple[str, str]] | None:
    if not choices:
        return None
    exact = "/".join(str(p) for p in path)
    general = "/".join(str(p) for p in path if not isinstance(p, int))
    last = next((p for p in reversed(path) if not isinstance(p, int)), None)
    for key in (exact, general, last):
        if key is not None and key in choices:
            return [(str(value), str(text)) for value, text in choices[key]]
    return None


def _options(schema: dict, labels: dict, given: list | None) -> list[tuple[str, str]] | None:
    if given is not None:
        return given
    if "enum" in schema:
        return [(str(v), str(labels.get(str(v), _humanise(v)))) for v in schema["enum"]]
    return None


def _kind(schema: dict, widget: str | None, options: list | None, item_options: list | None) -> str:
    kind = _type(schema)
    if widget == "file" and kind in ("string", "array"):
        return "file"
    if kind == "object":
        return "object"
    if kind == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        if _type(items) == "object":
            return "list"
        if item_options:
            return "checkboxes"
        return "strings"
    if kind == "boolean":
        return "boolean"
    if widget == "date" or schema.get("format") == "date":
        return "date"
    if kind in ("integer", "number"):
        return "number"
    if "enum" in schema:
        return "select" if widget == "select" else "radios"
    if options:
        return "radios" if widget == "radios" else "select"
    if widget == "textarea" or (schema.get("maxLength") or 0) > 500:
        return "textarea"
    if widget == "email" or schema.get("format") == "email":
        return "email"
    return "text"


def _make_field(parent: dict, name: str, path: tuple, choices: dict | None) -> _Field:
    schema = (parent.get("properties") or {})[name]
    if not isinstance(schema, dict):
        schema = {}
    ui = _ui(parent)
    own_ui = _ui(schema)
    widget = own_ui.get("widget") or (ui.get("widgets") or {}).get(name)
    labels = {**((ui.get("labels") or {}).get(name) or {}), **(own_ui.get("labels") or {})}
    labels = {str(k): str(v) for k, v in labels.items()}
    given = _choices_for(path, choices)
    source = own_ui.get("options") or (ui.get("options") or {}).get(name)
    if given is None and isinstance(source, str) and choices and source in choices:
        given = [(str(value), str(text)) for value, text in choices[source]]  # x-ui.options: a named list
    always, sometimes = _requirement(parent, name)
    options = item_options = None
    if _type(schema) == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        if _type(items) != "object":
            item_options = _options(items, labels, given)
            if item_options is None and widget == "checkboxes" and labels:
                item_options = [(k, v) for k, v in labels.items()]
    else:
        options = _options(schema, labels, given)
    kind = _kind(schema, widget, options, item_options)
    noun = "file" if kind == "file" else None
    if kind in ("list", "strings"):
        noun = (
            own_ui.get("item_label")
            or (ui.get("item_labels") or {}).get(name)
            or _singular(name)
        )
    return _Field(
        key=name,
        schema=schema,
        path=path,
        kind=kind,
        title=str(schema.get("title") or _humanise(name)),
        hint=schema.get("description"),
        required=always,
        conditional=sometimes and not always,
        parent=parent,
        labels=labels,
        widget=widget,
        options=item_options if kind == "checkboxes" else options,
        noun=noun,
    )


def _make_item(array: _Field, index: int, choices: dict | None) -> _Field:
    items = array.schema.get("items") if isinstance(array.schema.get("items"), dict) else {}
    label = f"{array.noun[:1].upper()}{array.noun[1:]} {index + 1}"
    path = array.path + (index,)
    if array.kind == "list":
        kind = "item"
        options = None
    else:
        options = _options(items, {}, _choices_for(path, choices))
        kind = _kind(items, _ui(items).get("widget"), options, None)
    return _Field(
        key=index,
        schema=items,
        path=path,
        kind=kind,
        title=label,
        hint=None,
        required=True,
        parent=None,
        options=options,
        array=array,
        index=index,
    )


def _locate(schema: dict, field_path: str, choices: dict | None = None) -> tuple[_Field | None, list[str]]:
    """The field an engine error path names, and the labels of the list items on the way."""
    if not field_path or field_path == "(form)":
        return None, []
    current: _Field | None = None
    context: list[str] = []
    for part in field_path.split("/"):
        if current is None or current.kind in ("object", "item"):
            obj = schema if current is None else current.schema
            if part not in (obj.get("properties") or {}):
                return None, context
            current = _make_field(obj, part, (current.path if current else ()) + (part,), choices)
        elif current.kind in ("list", "strings"):
            if not part.isdigit():
                return None, context
            current = _make_item(current, int(part), choices)
            context.append(current.title)
        elif current.kind in ("checkboxes", "file"):
            break  # an item of a checkbox list or of the files added: the whole is the field
        else:
            return None, context
    return current, context


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------

_WH = {"what", "who", "whom", "whose", "how", "when", "where", "why", "which"}
_AUX = {
    "is", "are", "was", "were", "do", "does", "did", "has", "have", "had", "will", "would",
    "can", "could", "should", "shall", "may", "might", "must",
}
_DETERMINERS = {"your", "the", "a", "an", "their", "his", "her", "its", "our", "my", "any", "each"}
_PREPOSITIONS = {"to", "for", "from", "with", "by", "after", "before", "about", "of", "on", "in", "at", "into"}

_PATTERNS = [
    (re.compile(r" should be non-empty$"), "short"),
    (re.compile(r" is too short$"), "short"),
    (re.compile(r" is too long$|is expected to be empty$"), "long"),
    (re.compile(r" does not match "), "pattern"),
    (re.compile(r" is not of type "), "type"),
    (re.compile(r" is less than (or equal to )?the minimum of "), "minimum"),
    (re.compile(r" is greater than (or equal to )?the maximum of "), "maximum"),
    (re.compile(r" was expected$"), "const"),
    (re.compile(r" has non-unique elements$"), "uniqueItems"),
    (re.compile(r" does not contain items matching|should contain"), "contains"),
    (re.compile(r" is not a multiple of "), "multipleOf"),
    (re.compile(r"^Additional properties are not allowed"), "additionalProperties"),
    (re.compile(r" is not valid under any of the given schemas$"), "anyOf"),
]
_PRIORITY = {"required": 0, "minLength": 1, "minItems": 1, "type": 2, "format": 3, "enum": 4, "const": 5}


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return _MISSING


def _classify(raw: str, field: _Field | None) -> tuple[str, Any]:
    """(jsonschema keyword, detail) for one engine message (engine.forms.describe)."""
    message = str(raw)
    if field is not None:
        for title in (field.schema.get("title"), field.title):
            if title and message.startswith(f"{title}: "):
                message = message[len(title) + 2:]
                break
    if message == "is required":
        return "required", None
    match = re.fullmatch(r"must be a valid ([\w-]+) \(got (.*)\)", message, re.S)
    if match:
        return "format", (match.group(1), _literal(match.group(2)))
    if message.startswith("must be one of "):
        return "enum", None
    for pattern, keyword in _PATTERNS:
        found = pattern.search(message)
        if found:
            instance = _literal(message[: found.start()]) if found.start() else _MISSING
            if keyword in ("short", "long"):
                is_list = isinstance(instance, list) or (
                    field is not None and field.kind in ("list", "strings", "checkboxes")
                    and not isinstance(instance, str)
                )
                keyword = ("minItems" if keyword == "short" else "maxItems") if is_list else (
                    "minLength" if keyword == "short" else "maxLength"
                )
            return keyword, instance
    return "unknown", None


def _noun_phrase(title: str) -> str | None:
    """The title as words that can follow "Enter"/"Select", or None when it must be quoted."""
    text = title.strip()
    words = text.rstrip("?").split()
    if not words:
        return None
    first, last = words[0].lower(), words[-1].lower()
    if text.endswith("?"):
        if first in _WH and (len(words) < 2 or words[1].lower() not in _AUX):
            return _lower_first(text.rstrip("?").strip())
        return None
    if last in _PREPOSITIONS:
        return None
    if first in _WH or first in _DETERMINERS:
        return _lower_first(text)
    return "the " + _lower_first(text)


def _subject(title: str) -> str:
    phrase = _noun_phrase(title)
    if phrase is None or title.split()[0].lower() in _WH:
        return f"The answer to ‘{title}’"
    return title


def _enter(title: str) -> str:
    phrase = _noun_phrase(title)
    return f"Enter {phrase}" if phrase else f"Enter an answer to ‘{title}’"


def _select(title: str) -> str:
    phrase = _noun_phrase(title)
    return f"Select {phrase}" if phrase else f"Select an answer to ‘{title}’"


def _join(words: list[str], last: str = "and") -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {last} {words[-1]}"


def _number(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _split_date(value) -> tuple[str, str, str]:
    """(day, month, year) to show for a stored or re-posted date value."""
    if isinstance(value, (dt.date, dt.datetime)):
        return str(value.day), str(value.month), str(value.year)
    if value is None or value == "":
        return "", "", ""
    text = str(value)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        year, month, day = text.split("-")
        return day.lstrip("0") or "0", month.lstrip("0") or "0", year
    parts = text.split("-")
    if len(parts) < 3:
        return "", "", text
    return parts[-1], "-".join(parts[1:-1]), parts[0]


def _date_problem(value) -> tuple[str, list[str]]:
    """("missing"|"year"|"real", the parts to highlight) for a date that failed its check."""
    if value is _MISSING or value is None:
        return "real", list(_DATE_PARTS)
    day, month, year = _split_date(value)
    given = dict(zip(_DATE_PARTS, (day, month, year)))
    missing = [name for name in _DATE_PARTS if not given[name]]
    if missing and len(missing) < 3:
        return "missing", missing
    if year.isdigit() and len(year) != 4 and day and month:
        return "year", ["year"]
    return "real", list(_DATE_PARTS)


def _message(field: _Field, raw: str) -> str:
    keyword, detail = _classify(raw, field)
    override = _override(field, keyword)
    if override:
        return override
    title = field.phrase_title
    subject = _subject(field.title)  # a plain list item is named by its label ("Attendee 2")
    choice = field.kind in ("radios", "select", "boolean", "checkboxes")
    schema = field.schema

    if keyword == "required" and field.kind == "file":
        return "Select a file"
    if keyword == "required":
        alternatives = _alternatives(field.parent, field.key) if field.parent is not None and not field.required else []
        if len(alternatives) > 1:
            props = field.parent.get("properties") or {}
            names = []
            for name in alternatives:
                text = _lower_first(str((props.get(name) or {}).get("title") or _humanise(name)))
                names.append(f"{_article(text)} {text}")
            return f"Enter {_join(names, 'or')}"
        if field.kind == "object":
            return f"Answer the questions in ‘{title}’"
        if field.kind == "list":
            return f"Add at least one {field.noun}"
        return _select(title) if choice else _enter(title)
    if keyword == "format":
        fmt, value = detail
        if fmt == "date":
            problem, parts = _date_problem(value)
            if problem == "missing":
                return f"{subject} must include {_article(parts[0])} {_join(parts)}"
            if problem == "year":
                return f"{subject} must include a year with 4 numbers"
            return f"{subject} must be a real date"
        if fmt == "email":
            phrase = _noun_phrase(title) or "an email address"
            return f"Enter {phrase} in the correct format, like name@example.com"
        return f"{subject} must be in the correct format"
    if keyword in ("enum", "pattern") and choice:
        return f"Choose one of the options for ‘{title}’"
    if keyword == "enum":
        return f"Choose one of the options for ‘{title}’"
    if keyword == "pattern":
        phrase = _noun_phrase(title)
        return f"Enter {phrase} in the correct format" if phrase else f"{subject} must be in the correct format"
    if keyword == "type":
        kind = _type(schema)
        if kind == "integer":
            return f"{subject} must be a whole number"
        if kind == "number":
            return f"{subject} must be a number"
        if kind == "boolean" or choice:
            return _select(title)
        return f"{subject} must be in the correct format"
    if keyword in ("minimum", "maximum"):
        low = _first_number(field, ("minimum", "exclusiveMinimum"))
        high = _first_number(field, ("maximum", "exclusiveMaximum"))
        if low is not None and high is not None:
            return f"{subject} must be between {_number(low[1])} and {_number(high[1])}"
        if low is not None:
            if low[0] == "exclusiveMinimum":
                return f"{subject} must be more than {_number(low[1])}"
            return f"{subject} must be {_number(low[1])} or more"
        if high is not None:
            if high[0] == "exclusiveMaximum":
                return f"{subject} must be less than {_number(high[1])}"
            return f"{subject} must be {_number(high[1])} or less"
        return f"{subject} is out of range"
    if keyword == "minLength":
        length = _bound(field, "minLength", max) or 1
        if detail == "" or length <= 1:
            return _select(title) if choice else _enter(title)
        return f"{subject} must be {length} characters or more"
    if keyword == "maxLength":
        length = _bound(field, "maxLength", min)
        return f"{subject} must be {length} characters or fewer" if length else f"{subject} is too long"
    if keyword == "minItems":
        count = _bound(field, "minItems", max) or 1
        if field.kind == "file":
            return "Select a file" if count == 1 else f"Select at least {count} files"
        if field.kind == "checkboxes":
            plain = _noun_phrase(field.title) and not field.title.endswith("?")
            what = _lower_first(field.title) if plain else "options"
            return f"Select at least {count} {what}"
        noun = field.noun or "item"
        return f"Add at least one {noun}" if count == 1 else f"Add at least {count} {_plural(noun)}"
    if keyword == "maxItems":
        count = _bound(field, "maxItems", min)
        if field.kind == "checkboxes":
            return f"Select no more than {count} options for ‘{field.title}’"
        return f"You can add up to {count} {_plural(field.noun or 'item')}"
    if keyword == "uniqueItems":
        if field.kind == "checkboxes":
            return f"Select each option for ‘{field.title}’ only once"
        return f"Each {field.noun or 'item'} must be different"
    if keyword == "const":
        expected = _conditional_keyword(field.parent, field.key, "const") if field.parent else []
        if expected:
            value = expected[-1]
            key = "true" if value is True else "false" if value is False else str(value)
            label = field.labels.get(key) or ("Yes" if value is True else "No" if value is False else _humanise(key))
            return f"{subject} must be ‘{label}’"
        return f"{subject} is not allowed"
    if keyword == "contains":
        needed = _required_members(schema)
        have = detail if isinstance(detail, list) else []
        missing = [value for value in needed if value not in have]
        if missing:
            labels = dict(field.options or [])
            return f"{field.title} must include {_join([labels.get(v, _humanise(v)) for v in missing])}"
        return f"{subject} is missing a required answer"
    if keyword == "multipleOf":
        return f"{subject} must be a multiple of {_number(schema.get('multipleOf'))}"
    if keyword == "anyOf":
        return f"{subject} must be in the correct format"
    return str(raw)


def _override(field: _Field, keyword: str) -> str | None:
    """``x-ui.messages`` on the parent object: {field: {keyword: text}} or {field: text}."""
    if field.parent is None:
        holder = _ui(field.array.schema) if field.array is not None else {}
        messages = holder.get("messages") or {}
        entry = messages.get("items")
    else:
        entry = (_ui(field.parent).get("messages") or {}).get(field.key)
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        return entry.get(keyword) or entry.get("*")
    return None


def _first_number(field: _Field, keywords: tuple[str, ...]):
    for keyword in keywords:
        values = _conditional_keyword(field.parent, field.key, keyword) if field.parent else []
        if keyword in field.schema and not values:
            values = [field.schema[keyword]]
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if numbers:
            return keyword, (max(numbers) if "inimum" in keyword else min(numbers))
    return None


def _bound(field: _Field, keyword: str, pick) -> int | None:
    values = _conditional_keyword(field.parent, field.key, keyword) if field.parent else []
    if not values and keyword in field.schema:
        values = [field.schema[keyword]]
    numbers = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    return pick(numbers) if numbers else None


def _required_members(schema: dict) -> list:
    needed = []
    for sub in [schema] + [s for s in schema.get("allOf") or [] if isinstance(s, dict)]:
        contains = sub.get("contains")
        if isinstance(contains, dict) and "const" in contains:
            needed.append(contains["const"])
        elif isinstance(contains, dict) and len(contains.get("enum") or []) == 1:
            needed.append(contains["enum"][0])
    return needed


def _best(raws: list[str], field: _Field | None) -> str:
    return min(raws, key=lambda raw: _PRIORITY.get(_classify(raw, field)[0], 9))


def friendly_message(error: dict, schema: dict, *, choices: dict | None = None) -> str:
    """A GOV.UK-style message for one engine error ({"field": "a/0/b", "message": ...}).

    Known jsonschema messages become plain English that names the field ("Enter the findings",
    "Due date must be a real date", "Select your decision"); anything else is returned as it is.
    A form can override a message with ``x-ui.messages``: ``{field: {keyword: text}}``.
    """
    field, _ = _locate(schema, str(error.get("field", "")), choices)
    if field is None:
        return str(error.get("message", ""))
    return _message(field, str(error.get("message", "")))


def _focus_id(field: _Field, raw: str) -> str:
    if field.kind == "date":
        keyword, detail = _classify(raw, field)
        parts = _date_problem(detail[1])[1] if keyword == "format" else list(_DATE_PARTS)
        return f"{field.id}-{parts[0]}"
    return field.id


def _order_key(schema: dict, path: str) -> tuple:
    """Where the field of an error path comes on the page; unknown paths go last."""
    key: list[int] = []
    current = schema
    for part in path.split("/") if path and path != "(form)" else []:
        if _type(current) == "object":
            order = _property_order(current)
            if part not in order:
                return (1, tuple(key))
            key.append(order.index(part))
            current = (current.get("properties") or {}).get(part) or {}
        elif _type(current) == "array":
            key.append(int(part) if part.isdigit() else 0)
            current = current.get("items") if isinstance(current.get("items"), dict) else {}
        else:
            break
    return (0, tuple(key))


def error_summary(errors: list[dict] | None, schema: dict, *, choices: dict | None = None) -> list[dict]:
    """Items for govukErrorSummary's errorList: one per field, in the order of the page.

    Each item is ``{"text": ..., "href": "#<field id>"}``; fields inside a list item start
    with the item ("Action 2: Enter the due date"); a date links to its first part in error
    (the day, unless only the month or year is wrong or missing). Errors that name no field
    of the form (such as "(form)") come last and have no link.
    """
    by_field: dict[str, list[str]] = {}
    for error in errors or []:
        by_field.setdefault(str(error.get("field", "")), []).append(str(error.get("message", "")))
    items = []
    for path in sorted(by_field, key=lambda p: _order_key(schema, p)):
        raws = by_field[path]
        field, context = _locate(schema, path, choices)
        if field is None:
            for raw in raws:
                items.append({"text": raw})
            continue
        raw = _best(raws, field)
        text = _message(field, raw)
        if context:
            text = f"{context[0]}{''.join(', ' + _lower_first(c) for c in context[1:])}: {text}"
        if all(existing["text"] != text for existing in items):  # e.g. "Enter an email, phone or address"
            items.append({"text": text, "href": f"#{_focus_id(field, raw)}"})
    return items


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

_standalone_env: Environment | None = None


def _extra_loaders() -> list:
    return [
        FileSystemLoader(str(TEMPLATES_DIR)),
        PrefixLoader({_GOVUK_PREFIX: PackageLoader("govuk_frontend_jinja")}),
    ]


def _environment() -> Environment:
    """The app's Jinja environment, overlaid so the form templates and the prefixed
    ``govuk_frontend_jinja/...`` macro paths always resolve (the macros import each other by
    that prefix, which a bare ``PackageLoader("govuk_frontend_jinja")`` does not provide)."""
    global _standalone_env
    from flask import current_app, has_app_context

    if has_app_context():
        app = current_app._get_current_object()
        cached = app.extensions.get("formrender")
        if cached is None or cached[0] is not app.jinja_env:
            base = app.jinja_env
            env = base.overlay(loader=ChoiceLoader([base.loader, *_extra_loaders()]))
            cached = (base, env)
            app.extensions["formrender"] = cached
        return cached[1]
    if _standalone_env is None:
        _standalone_env = Environment(loader=ChoiceLoader(_extra_loaders()), autoescape=True)
    return _standalone_env


@dataclass
class FileUploads:
    """What file fields show: the names of the documents already added (by id) and the rules."""

    uploaded: dict[str, str] = dc_field(default_factory=dict)
    rules: str | None = None  # added to the field's hint, e.g. "Files must be PDF, … each smaller than 10MB."
    accept: str | None = None  # the file picker's filter (the server checks the bytes anyway)


class _Renderer:
    def __init__(self, errors: list[dict] | None, choices: dict | None, fresh: bool,
                 files: FileUploads | None = None):
        self.errors: dict[str, list[str]] = {}
        for error in errors or []:
            self.errors.setdefault(str(error.get("field", "")), []).append(str(error.get("message", "")))
        self.choices = choices
        self.fresh = fresh
        self.files = files or FileUploads()
        self.has_lists = False

    # -- helpers --------------------------------------------------------------------------
    def error_for(self, field: _Field) -> tuple[str | None, str | None]:
        raws = self.errors.get(field.error_path)
        if not raws:
            return None, None
        raw = _best(raws, field)
        return _message(field, raw), raw

    @staticmethod
    def label(field: _Field) -> str:
        optional = not field.required and not field.conditional and field.array is None
        return f"{field.title} (optional)" if optional else field.title

    # -- nodes ----------------------------------------------------------------------------
    def object_children(self, schema: dict, path: tuple, value) -> list[dict]:
        value = value if isinstance(value, dict) else {}
        by_name: dict[str, dict] = {}
        for name in _property_order(schema):
            field = _make_field(schema, name, path + (name,), self.choices)
            if name in value:
                child = value[name]
            elif self.fresh and "default" in field.schema and field.kind in _DEFAULTED:
                child = field.schema["default"]
            else:
                child = None
            by_name[name] = self.node(field, child)
        revealed: set[str] = set()
        for name, options in _reveals(schema).items():
            node = by_name.get(name)
            if node is None or node["kind"] != "radios":
                continue
            for item in node["params"]["items"]:
                inside = [n for n in options.get(item["value"], []) if n in by_name and n not in revealed]
                if inside:
                    html = "".join(str(self.template_module().render_node(by_name[n])) for n in inside)
                    item["conditional"] = {"html": Markup(html)}
                    revealed.update(inside)
        return [node for name, node in by_name.items() if name not in revealed]

    @staticmethod
    def template_module():
        return _environment().get_template(TEMPLATE).module

    def node(self, field: _Field, value) -> dict:
        message, raw = self.error_for(field)
        error = {"text": message} if message else None
        hint = {"text": field.hint} if field.hint else None
        label = self.label(field)
        kind = field.kind
        if kind in ("text", "email", "number"):
            params = {
                "id": field.id,
                "name": field.id,
                "type": "email" if kind == "email" else "text",
                "label": {"text": label, "classes": "govuk-label--s"},
                "hint": hint,
                "errorMessage": error,
                "value": _display(value),
                "classes": _width(field),
            }
            if kind == "email":
                params["spellcheck"] = False
            if kind == "number":
                params["inputmode"] = "numeric" if _type(field.schema) == "integer" else "decimal"
                params["spellcheck"] = False
            autocomplete = (_ui(field.parent).get("autocomplete") or {}).get(field.key) if field.parent else None
            if autocomplete:
                params["autocomplete"] = autocomplete
            return {"kind": "input", "params": params}
        if kind == "textarea":
            return {
                "kind": "textarea",
                "params": {
                    "id": field.id,
                    "name": field.id,
                    "rows": 8 if (field.schema.get("maxLength") or 0) >= 5000 else 5,
                    "label": {"text": label, "classes": "govuk-label--s"},
                    "hint": hint,
                    "errorMessage": error,
                    "value": _display(value),
                },
            }
        if kind == "select":
            current = _display(value)
            options = list(field.options or [])
            if current and current not in {v for v, _ in options}:
                options.append((current, current))  # keep what was posted, even if unknown
            items = [{"value": "", "text": "Select an option", "selected": not current}]
            items += [{"value": v, "text": t, "selected": v == current} for v, t in options]
            return {
                "kind": "select",
                "params": {
                    "id": field.id,
                    "name": field.id,
                    "label": {"text": label, "classes": "govuk-label--s"},
                    "hint": hint,
                    "errorMessage": error,
                    "items": items,
                },
            }
        if kind in ("radios", "boolean"):
            if kind == "boolean":
                current = "yes" if value is True else "no" if value is False else _display(value)
                options = [
                    ("yes", field.labels.get("true", "Yes")),
                    ("no", field.labels.get("false", "No")),
                ]
            else:
                current = _display(value)
                options = list(field.options or [])
            inline = kind == "boolean" and all(len(text) <= 3 for _, text in options)
            return {
                "kind": "radios",
                "params": {
                    "idPrefix": field.id,
                    "name": field.id,
                    "fieldset": {"legend": {"text": label, "classes": "govuk-fieldset__legend--s"}},
                    "hint": hint,
                    "errorMessage": error,
                    "classes": "govuk-radios--inline" if inline else None,
                    "items": [{"value": v, "text": t, "checked": v == current} for v, t in options],
                },
            }
        if kind == "checkboxes":
            chosen = [str(v) for v in value] if isinstance(value, list) else []
            options = list(field.options or [])
            known = {v for v, _ in options}
            options += [(v, v) for v in chosen if v not in known]
            return {
                "kind": "checkboxes",
                "params": {
                    "idPrefix": field.id,
                    "name": field.id,
                    "fieldset": {"legend": {"text": label, "classes": "govuk-fieldset__legend--s"}},
                    "hint": hint,
                    "errorMessage": error,
                    "items": [{"value": v, "text": t, "checked": v in chosen} for v, t in options],
                },
            }
        if kind == "date":
            day, month, year = _split_date(value)
            wrong: list[str] = []
            if raw is not None:
                keyword, detail = _classify(raw, field)
                wrong = _date_problem(detail[1])[1] if keyword == "format" else list(_DATE_PARTS)
            items = []
            for name, text, width in (("day", day, 2), ("month", month, 2), ("year", year, 4)):
                classes = f"govuk-input--width-{width}" + (" govuk-input--error" if name in wrong else "")
                items.append({"name": name, "classes": classes, "value": text})
            return {
                "kind": "date",
                "params": {
                    "id": field.id,
                    "namePrefix": field.id,
                    "fieldset": {"legend": {"text": label, "classes": "govuk-fieldset__legend--s"}},
                    "hint": hint,
                    "errorMessage": error,
                    "items": items,
                },
            }
        if kind in ("object", "item"):
            children = self.object_children(field.schema, field.path, value)
            return self.group(field, label, error, hint, children, [], "s" if kind == "item" else "m")
        if kind in ("list", "strings"):
            return self.list_node(field, value, label, error, hint)
        if kind == "file":
            return self.file_node(field, value, label, error, hint)
        raise ValueError(f"cannot render field {field.id!r} of kind {kind!r}")  # pragma: no cover

    def group(self, field, label, error, hint, children, buttons, size) -> dict:
        described = " ".join(
            part for part, present in ((f"{field.id}-hint", hint), (f"{field.id}-error", error)) if present
        )
        return {
            "kind": "group",
            "id": field.id,
            "fieldset": {
                "legend": {"text": label, "classes": f"govuk-fieldset__legend--{size}"},
                "describedBy": described or None,
                "attributes": {"id": field.id},
            },
            "hint": {"id": f"{field.id}-hint", "text": hint["text"]} if hint else None,
            "error": {"id": f"{field.id}-error", "text": error["text"]} if error else None,
            "children": children,
            "buttons": buttons,
            "item": field.kind == "item",
        }

    def list_node(self, field: _Field, value, label, error, hint) -> dict:
        self.has_lists = True
        items = value if isinstance(value, list) else []
        minimum = field.schema.get("minItems") or 0
        maximum = field.schema.get("maxItems")
        count = max(len(items), min(minimum, _MAX_PLACEHOLDER_ITEMS))
        removable = count > minimum
        noun = field.noun or "item"
        children = []
        for index in range(count):
            item = _make_item(field, index, self.choices)
            item_value = items[index] if index < len(items) else None
            remove = None
            if removable:
                remove = {
                    "html": Markup('Remove<span class="govuk-visually-hidden"> {}</span>').format(
                        f"{noun} {index + 1}"
                    ),
                    "name": ACTION_FIELD,
                    "value": f"remove:{field.id}:{index}",
                    "classes": "govuk-button--secondary app-add-another__remove",
                }
            if item.kind == "item":
                node = self.node(item, item_value)
                if remove:
                    node["buttons"] = [remove]
            else:
                node = {"kind": "list-entry", "field": self.node(item, item_value), "button": remove}
            children.append(node)
        buttons = []
        if maximum is None or count < maximum:
            text = f"Add another {noun}" if count else f"Add {_article(noun)} {noun}"
            buttons.append({
                "text": text,
                "name": ACTION_FIELD,
                "value": f"add:{field.id}",
                "classes": "govuk-button--secondary app-add-another__add",
            })
        return self.group(field, label, error, hint, children, buttons, "m")

    def file_node(self, field: _Field, value, label, error, hint) -> dict:
        ids = [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str) and v]
        uploaded = []
        for index, document_id in enumerate(ids):
            name = self.files.uploaded.get(document_id) or f"File {index + 1}"
            uploaded.append({"id": document_id, "name": name, "remove": {
                "html": Markup('Remove<span class="govuk-visually-hidden"> {}</span>').format(name),
                "name": ACTION_FIELD,
                "value": f"remove:{field.id}:{index}",
                "classes": "govuk-button--secondary govuk-!-margin-bottom-0 govuk-!-margin-left-2",
            }})
        self.has_lists = self.has_lists or bool(uploaded)  # Enter must not press a Remove button
        rules = " ".join(text for text in ((hint or {}).get("text"), self.files.rules) if text)
        params = {
            "id": field.id,
            "name": field.id,
            "label": {"text": label, "classes": "govuk-label--s"},
            "hint": {"text": rules} if rules else None,
            "errorMessage": error,
            "multiple": _type(field.schema) == "array",
        }
        if self.files.accept:
            params["attributes"] = {"accept": self.files.accept}
        return {"kind": "file", "params": params, "uploaded": uploaded}


def _display(value) -> str:
    if value is None or value is _MISSING:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return ""
    return str(value)


def _width(field: _Field) -> str | None:
    if field.kind == "number":
        return "govuk-input--width-5"
    longest = field.schema.get("maxLength")
    if isinstance(longest, int):
        if longest <= 10:
            return "govuk-input--width-10"
        if longest <= 30:
            return "govuk-input--width-20"
    return None


def render_fields(
    schema: dict,
    values: dict | None = None,
    errors: list[dict] | None = None,
    *,
    choices: dict[str, list[tuple[str, str]]] | None = None,
    files: FileUploads | None = None,
    new: bool | None = None,
    page_heading: str | None = None,
) -> Markup:
    """The HTML of every field of ``schema``, filled from ``values``, with ``errors`` inline.

    ``values`` is form data as stored or as returned by ``parse_submission``/``apply_form_action``
    (values that failed validation, such as "2026-2-31" or "abc" for a number, are shown as the
    user typed them). When ``values`` is None the form is new and schema defaults fill text and
    number inputs (radios are never pre-selected). ``choices`` gives select/checkbox options as
    ``{key: [(value, text), ...]}`` where key is the field path with indices
    (``"actions/0/agency"``), without them (``"actions/agency"``) or the bare property name
    (``"agency"``), tried in that order. A string field with widget "select" and no choices is
    shown as a text input. A field whose ``x-ui.options`` (or its object's ``x-ui.options.<name>``)
    names a list in ``choices`` (``"agencies"``) offers that list. ``new=True`` says ``values`` are
    what a new form starts with (``x-ui.prefill``): schema defaults still fill what they leave out.
    ``page_heading`` names the top-level field whose label or legend is the page's ``h1`` (GOV.UK:
    a page that asks one question makes the question its heading).
    """
    renderer = _Renderer(errors, choices, fresh=values is None if new is None else new, files=files)
    nodes = renderer.object_children(schema, (), values or {})
    if page_heading:
        _make_page_heading(nodes, page_heading)
    template = _environment().get_template(TEMPLATE)
    return Markup(template.render(nodes=nodes, default_button=renderer.has_lists))


def _make_page_heading(nodes: list[dict], name: str) -> None:
    """The label or legend of field `name` becomes the page's h1 (GOV.UK Frontend's isPageHeading)."""
    for node in nodes:
        params = node.get("params") or {}
        if params.get("name") == name or params.get("idPrefix") == name or params.get("id") == name:
            if "fieldset" in params:
                params["fieldset"]["legend"].update(isPageHeading=True, classes="govuk-fieldset__legend--l")
            elif "label" in params:
                params["label"].update(isPageHeading=True, classes="govuk-label--l")
            return
        if node.get("kind") == "group" and node.get("id") == name:
            node["fieldset"]["legend"].update(isPageHeading=True, classes="govuk-fieldset__legend--l")
            return


# --------------------------------------------------------------------------------------------
# Parsing a submission
# --------------------------------------------------------------------------------------------

def _clean(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _parse_number(text: str, integer: bool):
    compact = text.replace(",", "").replace(" ", "")
    if re.fullmatch(r"[+-]?\d+", compact):
        return int(compact)
    if not integer and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", compact):
        number = float(compact)
        if math.isfinite(number):
            return number
    return text  # the schema reports the type error; the page re-shows what was typed


def _parse_date(day: str, month: str, year: str):
    if not (day or month or year):
        return _MISSING
    month_number = str(_MONTHS[month.lower()]) if month.lower() in _MONTHS else month
    if day.isdigit() and month_number.isdigit() and year.isdigit() and len(year) == 4:
        try:
            return dt.date(int(year), int(month_number), int(day)).isoformat()
        except ValueError:
            pass
    return f"{year}-{month}-{day}"  # fails the "date" format; re-shown part by part


def _is_empty(value) -> bool:
    if value is _MISSING or value is None or value == "":
        return True
    if isinstance(value, dict):
        return all(_is_empty(v) for v in value.values())
    if isinstance(value, list):
        return all(_is_empty(v) for v in value)
    return False


def _indices(form, prefix: str) -> list[int]:
    pattern = re.compile(re.escape(prefix) + r"-(\d+)(?:-|$)")
    found = set()
    for key in form.keys():
        match = pattern.match(key)
        if match:
            found.add(int(match.group(1)))
    return sorted(found)


class _Parser:
    def __init__(self, form, keep_empty: bool):
        self.form = form
        self.keep_empty = keep_empty

    def text(self, name: str):
        raw = self.form.get(name)
        if raw is None:
            return _MISSING
        text = _clean(str(raw))
        return text if text else _MISSING

    def object(self, schema: dict, path: tuple) -> dict:
        data = {}
        for name in _property_order(schema):
            field = _make_field(schema, name, path + (name,), None)
            value = self.value(field)
            if value is not _MISSING:
                data[name] = value
        return data

    def value(self, field: _Field):
        kind = _type(field.schema)
        if field.kind == "item" or kind == "object":
            data = self.object(field.schema, field.path)
            if data or field.required or field.kind == "item":
                return data
            return _MISSING
        if kind == "array":
            values = self.array(field)
            return _MISSING if field.kind == "file" and not values else values  # no documents: no answer
        if field.kind == "date":
            parts = [_clean(str(self.form.get(f"{field.id}-{p}", ""))) for p in _DATE_PARTS]
            return _parse_date(*parts)
        text = self.text(field.id)
        if text is _MISSING:
            return _MISSING
        if kind == "boolean":
            lowered = text.lower()
            if lowered in ("yes", "true"):
                return True
            if lowered in ("no", "false"):
                return False
            return text
        if kind in ("integer", "number"):
            return _parse_number(text, kind == "integer")
        return text

    def array(self, field: _Field) -> list:
        minimum = field.schema.get("minItems") or 0
        indices = _indices(self.form, field.id)
        if not indices and field.kind != "list":  # checkboxes: every ticked value under one name
            items = field.schema.get("items") if isinstance(field.schema.get("items"), dict) else {}
            values = []
            for raw in self.form.getlist(field.id):
                text = _clean(str(raw))
                if text:
                    if _type(items) in ("integer", "number"):
                        values.append(_parse_number(text, _type(items) == "integer"))
                    else:
                        values.append(text)
            return values
        values = []
        for index in indices:
            item = _make_item(field, index, None)
            value = self.value(item)
            if value is _MISSING:
                value = "" if item.kind != "item" else {}
            values.append(value)
        if self.keep_empty:
            return values
        kept = [v for v in values if not _is_empty(v)]
        if not kept and values and minimum >= 1:
            kept = [values[0] if isinstance(values[0], dict) else ""]
        return kept


def parse_submission(schema: dict, form) -> tuple[dict, str | None]:
    """Posted fields (a werkzeug MultiDict) → (data of the schema's types, form_action).

    Strings are trimmed and empty ones left out; numbers that do not parse and impossible or
    incomplete dates are kept as typed so validation reports them and the page re-shows them.
    Lists are always present (``[]`` when empty; a file field without files is left out); entirely
    empty list items are dropped, except that a list with minItems >= 1 keeps one so its fields get
    their own errors.
    When the user pressed an add/remove button, ``form_action`` is its value and every item,
    empty or not, is kept in page order so that the indices in the action still match.
    """
    action = form.get(ACTION_FIELD)
    action = str(action).strip() if action else None
    if action and not action.startswith(("add:", "remove:")):
        action = None
    data = _Parser(form, keep_empty=action is not None).object(schema, ())
    return data, action


def _find_list(schema: dict, data: dict, target: str):
    """(array schema, the dict holding the list, its key) for a list id such as ``actions``
    or ``incidents-0-witnesses``; creates missing parent objects; None if there is no such list."""
    obj_schema, container, rest = schema, data, target
    while True:
        props = obj_schema.get("properties") or {}
        name = next(
            (n for n in sorted(props, key=len, reverse=True) if rest == n or rest.startswith(n + "-")),
            None,
        )
        if name is None:
            return None
        sub = props[name] if isinstance(props[name], dict) else {}
        if rest == name:
            single_file = (_ui(sub).get("widget") or (_ui(obj_schema).get("widgets") or {}).get(name)) == "file"
            return (sub, container, name) if _type(sub) == "array" or single_file else None
        rest = rest[len(name) + 1:]
        if _type(sub) == "object":
            if not isinstance(container.get(name), dict):
                container[name] = {}
            obj_schema, container = sub, container[name]
            continue
        if _type(sub) == "array":
            index, _, rest = rest.partition("-")
            items = sub.get("items") if isinstance(sub.get("items"), dict) else {}
            current = container.get(name)
            if not index.isdigit() or not rest or _type(items) != "object" or not isinstance(current, list):
                return None
            if int(index) >= len(current) or not isinstance(current[int(index)], dict):
                return None
            obj_schema, container = items, current[int(index)]
            continue
        return None


def apply_form_action(schema: dict, data: dict | None, form_action: str) -> dict:
    """A copy of ``data`` with the add/remove done: ``add:<list id>`` appends an empty item
    (up to maxItems); ``remove:<list id>:<index>`` removes that item. An action that names no
    list or item of the form changes nothing."""
    result = copy.deepcopy(data) if isinstance(data, dict) else {}
    verb, _, rest = str(form_action or "").partition(":")
    index = None
    if verb == "remove":
        rest, _, number = rest.rpartition(":")
        if not number.isdigit():
            return result
        index = int(number)
    elif verb != "add":
        return result
    found = _find_list(schema, result, rest)
    if found is None:
        return result
    array_schema, container, key = found
    if _type(array_schema) != "array":  # a single file field: removing its file clears it
        if verb == "remove" and index == 0:
            container.pop(key, None)
        return result
    items = container.get(key)
    if not isinstance(items, list):
        items = container[key] = []
    if verb == "add":
        maximum = array_schema.get("maxItems")
        if maximum is None or len(items) < maximum:
            item_schema = array_schema.get("items") if isinstance(array_schema.get("items"), dict) else {}
            items.append({} if _type(item_schema) == "object" else "")
    elif index is not None and 0 <= index < len(items):
        del items[index]
    return result
