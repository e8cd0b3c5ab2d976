"""Versions: the history, what changed between any two, and rolling back (publishing an earlier
version's files again as a new version)."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from engine import versions as engine_versions
from engine.errors import NotFound
from engine.studio import BundleInvalid, diff_versions, get_version, publish_again, version_history

from . import blueprint, service, who
from .drafts import MAX_NOTE


@blueprint.get("/versions")
def versions():
    with service().sessions() as db:
        history = version_history(db)
    numbers = [h["version"] for h in history]
    return render_template("studio/versions.html", title="Versions", history=history, numbers=numbers,
                           compare_from=numbers[1] if len(numbers) > 1 else None,
                           compare_to=numbers[0] if numbers else None)


def _files(db, number: int) -> dict[str, str]:
    try:
        return dict(get_version(db, number).files)
    except NotFound as error:
        abort(404, error.message)


@blueprint.get("/versions/compare")
def compare():
    first, second = request.args.get("from", ""), request.args.get("to", "")
    if not (first.isdigit() and second.isdigit()):
        abort(404, "Choose two versions to compare.")
    with service().sessions() as db:
        before, after = _files(db, int(first)), _files(db, int(second))
    return render_template("studio/compare.html", title=f"Version {first} compared with version {second}",
                           diff=diff_versions(before, after), before=f"version {first}", after=f"version {second}",
                           first=int(first), second=int(second))


@blueprint.route("/versions/<int:number>/roll-back", methods=["GET", "POST"])
def roll_back(number: int):
    with service().sessions() as db:
        old = _files(db, number)
        latest = engine_versions.latest_version(db)
        latest_number, latest_files = latest.number, dict(latest.files)
        history = {h["version"]: h for h in version_history(db)}
    note, error, problems, status = f"Back to version {number}", None, [], 200
    if request.method == "POST":
        note = request.form.get("note", "").strip()
        if not note:
            error = "Enter a note saying why you are going back to this version"
        elif len(note) > MAX_NOTE:
            error = f"The note must be {MAX_NOTE} characters or fewer"
        elif number == latest_number:
            error = f"Version {number} is already the latest version"
        else:
            try:
                version = publish_again(service(), number, note=note, by=who())
            except BundleInvalid as refused:
                problems = refused.problems
                error = (f"Version {number} no longer passes the checks ({len(problems)} problem(s)); "
                         "nothing was published")
            else:
                flash(f"Version {version.number} is published with the files of version {number}. New cases start "
                      "on it; running cases stay where they are until you move them.")
                return redirect(url_for("studio.versions"))
        status = 422
    return render_template("studio/roll_back.html", title=f"Roll back to version {number}", number=number,
                           latest=latest_number, version=history.get(number), note=note, error=error,
                           error_items=[{"text": error, "href": "#roll-back-note"}] if error else None,
                           problems=problems, diff=diff_versions(latest_files, old)), status
