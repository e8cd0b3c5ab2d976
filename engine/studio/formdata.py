"""Minimal valid answers generated from a form's JSON Schema, for the dry run.

Only required fields are filled, with the first option of a choice, the smallest number, a
short text and the given date. A value the schema still refuses (an if/then requirement, a
`contains`) is repaired from the validator's errors a few times before giving up.
"""
from __future__ import annotations

import re
from datetime import date
from typing import Any

from jsonschema import Draft202012Validator

from ..forms import make_validator

TEXT = "Dry run answer"
EMAIL = "dry-run@example.org"
# Strings tried, in order, for a field with a pattern (agency codes, times, references).
PATTERN_CANDIDATES = ("police", "council", "housing", "fire", "09:30", "dry-run", "DRY-1", "a1", "1")
MAX_REPAIRS = 6


class CannotAnswer(ValueError):
    """No valid data could be made for the form (its message lists what the schema refused)."""


def answer(schema: dict, *, on: date, fill_lists: bool = False, given: dict | None = None) -> dict:
    """A dict the form's schema accepts. `given` values (e.g. a journey's own incidents) are used
    where the schema accepts them; `fill_lists` puts one item in optional lists."""
    maker = _Maker(on, fill_lists)
    data = maker.value(schema)
    if not isinstance(data, dict):
        data = {}
    validator = make_validator(schema)
    for name, value in (given or {}).items():
        if name in (schema.get("properties") or {}):
            trial = {**data, name: value}
            if not _errors_at(validator, trial, name):
                data = trial
    for _attempt in range(MAX_REPAIRS):
        errors = list(validator.iter_errors(data))
        if not errors:
            return data
        for error in errors:
            maker.repair(schema, data, error)
    errors = list(validator.iter_errors(data))
    if errors:
        raise CannotAnswer("; ".join(f"{'/'.join(map(str, e.absolute_path)) or '(form)'}: {e.message}"
                                     for e in errors[:5]))
    return data


def _errors_at(validator: Draft202012Validator, data: dict, name: str) -> bool:
    return any(list(e.absolute_path)[:1] == [name] for e in validator.iter_errors(data))


def schema_at(schema: dict, path: list) -> dict:
    """The subschema describing the value at `path` (object properties and array items)."""
    current = schema
    for part in path:
        if isinstance(part, int):
            current = current.get("items") if isinstance(current.get("items"), dict) else {}
        else:
            current = (current.get("properties") or {}).get(part, {})
    return current if isinstance(current, dict) else {}


def _container(data: Any, path: list) -> Any:
    for part in path:
        data = data[part]
    return data


class _Maker:
    def __init__(self, on: date, fill_lists: bool):
        self.on = on
        self.fill_lists = fill_lists

    def value(self, schema: Any) -> Any:
        if not isinstance(schema, dict):
            return None
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        if "default" in schema:
            return schema["default"]
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
        maker = getattr(self, f"_{kind}", None)
        return maker(schema) if maker else None

    def _object(self, schema: dict) -> dict:
        properties = schema.get("properties") or {}
        return {name: self.value(properties.get(name, {})) for name in schema.get("required") or []}

    def _array(self, schema: dict) -> list:
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        count = max(schema.get("minItems") or 0, 1 if self.fill_lists else 0)
        containers = [schema, *[p for p in schema.get("allOf") or [] if isinstance(p, dict)]]
        values = list(dict.fromkeys(c["contains"]["const"] for c in containers
                                    if isinstance(c.get("contains"), dict) and "const" in c["contains"]))
        if items.get("enum") or items.get("type", "string") == "string" and "properties" not in items:
            for candidate in items.get("enum") or self._string_candidates(items):
                if len(values) >= count:
                    break
                if candidate not in values:
                    values.append(candidate)
        else:
            values += [self.value(items) for _ in range(count - len(values))]
        return values

    def _string_candidates(self, schema: dict) -> list:
        if schema.get("format") == "date":
            return [self.on.isoformat()]
        if schema.get("format") == "email":
            return [EMAIL]
        if schema.get("pattern"):
            pattern = re.compile(schema["pattern"])
            return [c for c in PATTERN_CANDIDATES if pattern.search(c)] or [TEXT]
        return [f"{TEXT} {n}" for n in range(1, 51)]

    def _string(self, schema: dict) -> str:
        if schema.get("format") == "date-time":
            return f"{self.on.isoformat()}T09:00:00+00:00"
        text = self._string_candidates(schema)[0]
        if not schema.get("format") and not schema.get("pattern"):
            text = TEXT
        minimum, maximum = schema.get("minLength") or 0, schema.get("maxLength")
        if len(text) < minimum:
            text = text + "x" * (minimum - len(text))
        if maximum is not None and len(text) > maximum:
            text = text[:maximum]
        return text

    def _integer(self, schema: dict) -> int:
        value = schema.get("minimum", 0)
        if "exclusiveMinimum" in schema:
            value = max(value, int(schema["exclusiveMinimum"]) + 1)
        if "maximum" in schema and value > schema["maximum"]:
            value = schema["maximum"]
        return int(value)

    def _number(self, schema: dict) -> float:
        return self._integer(schema)

    def _boolean(self, schema: dict) -> bool:
        return False

    def _null(self, schema: dict) -> None:
        return None

    def repair(self, root: dict, data: dict, error) -> None:
        """Fix what one validation error names, in place, where that is simple."""
        path = list(error.absolute_path)
        if error.validator in ("anyOf", "oneOf") and error.context:
            for inner in error.context:
                if inner.relative_schema_path and inner.relative_schema_path[0] == 0:
                    self.repair(root, data, inner)
            return
        try:
            holder = _container(data, path)
        except (KeyError, IndexError, TypeError):
            return
        if error.validator == "required" and isinstance(holder, dict):
            missing = re.findall(r"'([^']+)' is a required property", error.message)
            for name in missing:
                holder[name] = self.value(schema_at(root, [*path, name]))
        elif path:
            parent = _container(data, path[:-1])
            parent[path[-1]] = self.value(schema_at(root, path))
