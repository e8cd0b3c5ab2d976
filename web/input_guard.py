"""Refuse, at the door, input that the database or the engine cannot take.

Checked before any view runs, for every page and the API: the path, the query string and the
posted form fields must be text without NUL bytes or lone surrogates (PostgreSQL refuses the
first, psycopg cannot encode the second); JSON bodies are decoded by a provider that also refuses
deep nesting; integers in URLs fit a database integer. Each gets a 400 saying what was wrong,
instead of a server error halfway through a command."""
from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.routing import IntegerConverter

from engine.errors import InvalidData
from engine.inputs import MAX_DATABASE_INTEGER, parse_json, text_problem


class DatabaseInteger(IntegerConverter):
    """`<int:…>` in every route: a number larger than a database integer matches no page (404)."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", MAX_DATABASE_INTEGER)
        super().__init__(url_map, *args, **kwargs)


class CheckedJSONProvider(DefaultJSONProvider):
    """Request bodies decode through engine.inputs: a body nested too deeply or carrying a NUL or
    a lone surrogate is "not valid JSON" (Flask answers 400, the API its own error)."""

    def loads(self, s, **kwargs):
        try:
            return parse_json(s, "The request body")
        except InvalidData as exc:
            raise ValueError(f"{exc.errors[0]['field']} {exc.errors[0]['message']}") from None


def _problem_in_request() -> str | None:
    problem = text_problem(request.path)
    if problem:
        return f"The address {problem}."
    for source, values in (("address", request.args), ("form", request.form if _has_form() else None)):
        if values is None:
            continue
        for key, value in values.items(multi=True):
            problem = text_problem(str(key)) or (text_problem(value) if isinstance(value, str) else None)
            if problem:
                return f"A value in the {source} {problem}."
    return None


def _has_form() -> bool:
    return request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
        "application/x-www-form-urlencoded", "multipart/form-data")


def refuse_unstorable_input():
    problem = _problem_in_request()
    if problem is None:
        return None
    if request.path.startswith("/api/"):
        return jsonify({"error": problem}), 400
    return render_template("error.html", title="There is a problem with what was sent",
                           description=f"{problem} Go back, remove it and try again. Nothing was saved."), 400


def init_app(app: Flask) -> None:
    app.url_map.converters["int"] = DatabaseInteger
    app.json = CheckedJSONProvider(app)
    app.before_request(refuse_unstorable_input)
