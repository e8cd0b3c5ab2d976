"""What every input must be before it goes near the database: text without NUL bytes or lone
surrogates, JSON of bounded depth, numbers a database column can hold.

PostgreSQL refuses a NUL byte in text and psycopg cannot encode a lone surrogate, so either one
would fail deep inside a command (a 500, a traceback). The web app, the API and the command line
check their inputs here first and refuse them with an error the sender can act on."""
from __future__ import annotations

import json
from typing import Any, Iterator

from .errors import InvalidData

MAX_JSON_DEPTH = 64  # far deeper than any form (an application is 4 levels deep)
MAX_DATABASE_INTEGER = 2**31 - 1  # the range of an INTEGER column on PostgreSQL and SQLite ids


def text_problem(value: str) -> str | None:
    """Why this text cannot be stored, or None."""
    if "\x00" in value:
        return "must not contain a NUL character"
    if any("\ud800" <= character <= "\udfff" for character in value):
        return "must not contain an unpaired surrogate (not valid Unicode)"
    return None


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a JSON value, keys included, with where it is (iterative: no recursion)."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            yield where or "(input)", item
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{where}/{key}" if where else str(key)
                yield child_path, str(key)
                stack.append((child, child_path))
        elif isinstance(item, list):
            stack.extend((child, f"{where}/{index}" if where else str(index)) for index, child in enumerate(item))


def _too_deep(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def value_problems(value: Any) -> list[dict]:
    """Field-level problems with a decoded JSON value: depth, NUL bytes, lone surrogates, huge numbers."""
    if _too_deep(value, MAX_JSON_DEPTH):
        return [{"field": "(input)", "message": f"is nested more than {MAX_JSON_DEPTH} levels deep"}]
    problems = []
    for where, text in _strings(value):
        problem = text_problem(text)
        if problem:
            problems.append({"field": where, "message": problem})
    return problems[:20]


def check_value(value: Any, what: str = "The input") -> Any:
    problems = value_problems(value)
    if problems:
        raise InvalidData(problems, f"{what} is not valid")
    return value


def parse_json(text: str | bytes, what: str = "The input") -> Any:
    """json.loads that refuses what the database or the engine cannot take, with a clear error."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise InvalidData([{"field": "(input)", "message": f"is nested more than {MAX_JSON_DEPTH} levels deep"}],
                          f"{what} is not valid") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        message = f"not valid JSON: {exc.msg} at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) \
            else "not valid JSON: it is not UTF-8 text"
        raise InvalidData([{"field": "(input)", "message": message}], f"{what} is not valid JSON") from None
    return check_value(value, what)
