"""SQL the two databases write differently, as SQLAlchemy constructs (one place for both dialects)."""
from __future__ import annotations

from sqlalchemy import Date, Integer, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class completed_task(FunctionElement):
    """The BPMN id of the user task an audit row's command completed (`detail["task"]`), written
    exactly as migration 0006 indexes it, so the database can use that index."""

    type = String()
    name = "completed_task"
    inherit_cache = True


@compiles(completed_task)
def _completed_task_sqlite(element, compiler, **kw):
    return f"json_extract({compiler.process(element.clauses, **kw)}, '$.task')"


@compiles(completed_task, "postgresql")
def _completed_task_postgresql(element, compiler, **kw):
    return f"({compiler.process(element.clauses, **kw)} ->> 'task')"


class utc_day(FunctionElement):
    """The UTC date of a stored instant (the engine's day; see periods.py)."""

    type = Date()
    name = "utc_day"
    inherit_cache = True


@compiles(utc_day)
def _utc_day_sqlite(element, compiler, **kw):
    return f"date({compiler.process(element.clauses, **kw)})"  # stored as naive UTC text


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element, compiler, **kw):
    return f"CAST(timezone('UTC', {compiler.process(element.clauses, **kw)}) AS DATE)"


class answer_count(FunctionElement):
    """How many entries a list answer of a completed task had (`detail["counts"][name]`, written by
    CaseReview.complete: counts only, never the answers themselves); NULL when not recorded."""

    type = Integer()
    name = "answer_count"
    inherit_cache = True

    def __init__(self, detail, field: str):
        self.field = field
        super().__init__(detail)


@compiles(answer_count)
def _answer_count_sqlite(element, compiler, **kw):
    return f"json_extract({compiler.process(element.clauses, **kw)}, '$.counts.{element.field}')"


@compiles(answer_count, "postgresql")
def _answer_count_postgresql(element, compiler, **kw):
    return f"CAST(({compiler.process(element.clauses, **kw)} -> 'counts' ->> '{element.field}') AS INTEGER)"
