"""Running cases and new versions: which open cases on version A can move to version B and why
the others cannot; moving the movable ones in one audited operation (engine.studio.migrate_cases,
which checks each case again under its lock and refuses the rest with reasons)."""
from __future__ import annotations

from flask import abort, render_template, request

from engine.errors import NotFound
from engine.studio import migrate_cases, migration_plan, version_history

from . import blueprint, service, who


def _versions() -> list[dict]:
    with service().sessions() as db:
        return version_history(db)


def _pair(history: list[dict], source) -> tuple[int | None, int | None]:
    numbers = {h["version"] for h in history}
    first, second = source.get("from", ""), source.get("to", "")
    first = int(first) if first.isdigit() and int(first) in numbers else None
    second = int(second) if second.isdigit() and int(second) in numbers else None
    return first, second


def _plan(first: int, second: int) -> list[dict]:
    with service().sessions() as db:
        try:
            return migration_plan(db, first, second)
        except NotFound as error:
            abort(404, error.message)


@blueprint.get("/cases")
def cases():
    history = _versions()
    first, second = _pair(history, request.args)
    if first is None and second is None:  # the usual question: the oldest version with open cases → the latest
        with_cases = [h["version"] for h in history if h["open_cases"]]
        first = min(with_cases) if with_cases else None
        second = history[0]["version"] if history else None
    plan = _plan(first, second) if first is not None and second is not None and first != second else None
    return render_template("studio/cases.html", title="Running cases", history=history, first=first,
                           second=second, plan=plan, movable=[p for p in plan or [] if p["movable"]])


@blueprint.get("/cases/move")
def confirm_move():
    first, second = _pair(_versions(), request.args)
    if first is None or second is None or first == second:
        abort(404, "Choose two different versions.")
    plan = _plan(first, second)
    return render_template("studio/cases_confirm.html", title=f"Move cases to version {second}", first=first,
                           second=second, movable=[p for p in plan if p["movable"]],
                           refused=[p for p in plan if not p["movable"]])


@blueprint.post("/cases/move")
def move():
    first, second = _pair(_versions(), request.form)
    if first is None or second is None or first == second:
        abort(404, "Choose two different versions.")
    references = [r for r in request.form.getlist("case") if r]
    result = migrate_cases(service(), references, second, by=who()) if references else \
        {"version": second, "moved": [], "refused": []}
    return render_template("studio/cases_moved.html", title=f"Cases moved to version {second}", first=first,
                           second=second, result=result)
