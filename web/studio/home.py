"""Studio home (processes, versions, open drafts), starting a draft, importing a .zip as a draft
and downloading a version as a .zip."""
from __future__ import annotations

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from engine import versions
from engine.errors import InvalidData, NotFound
from engine.studio import get_version, list_drafts, read_zip, start_draft, version_history, write_zip
from engine.studio.bundles import MAX_ARCHIVE_BYTES

from . import blueprint, service, who
from .bpmnprops import processes_in


@blueprint.get("/")
def home():
    with service().sessions() as db:
        latest = versions.latest_version(db)
        processes = processes_in(dict(latest.files)) if latest is not None else []
        history = version_history(db)
        drafts = [{"id": d.id, "based_on": d.based_on_version, "by": d.updated_by, "at": d.updated_at,
                   "note": d.note} for d in list_drafts(db)]
    version_items = [{"value": h["version"], "text": f"Version {h['version']}" + (" (latest)" if i == 0 else ""),
                      "selected": i == 0} for i, h in enumerate(history)]
    return render_template("studio/home.html", title="Process studio", processes=processes, history=history,
                           drafts=drafts, latest=latest.number if latest is not None else None,
                           version_items=version_items)


@blueprint.post("/drafts")
def new_draft():
    number = request.form.get("version", "")
    if not number.isdigit():
        abort(400, "Choose a version to start from.")
    try:
        draft = start_draft(service(), int(number), by=who())
    except NotFound as error:
        abort(404, error.message)
    flash(f"Draft {draft.id} started from version {number}. Nothing changes for cases until you publish it.")
    return redirect(url_for("studio.draft", draft_id=draft.id))


@blueprint.get("/versions/<int:number>/bundle.zip")
def export(number: int):
    with service().sessions() as db:
        try:
            row = get_version(db, number)
        except NotFound as error:
            abort(404, error.message)
        files, bundle = dict(row.files), row.bundle
    return Response(write_zip(files), mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{bundle}-version-{number}.zip"'})


def _import_page(errors: list[dict] | None = None, status: int = 200):
    items = [{"text": e["message"] if e["field"] in ("bundle", "(archive)", "(bundle)")
              else f"{e['field']}: {e['message']}", "href": "#bundle"} for e in errors or []]
    return render_template("studio/import.html", title="Import a bundle", error_items=items or None,
                           error=items[0]["text"] if items else None, limit_mb=_upload_limit() // (1024 * 1024)), \
        status


def _upload_limit() -> int:
    """The engine's archive limit, or the app's request limit when that is lower."""
    return min(MAX_ARCHIVE_BYTES, current_app.config.get("MAX_CONTENT_LENGTH") or MAX_ARCHIVE_BYTES)


@blueprint.errorhandler(RequestEntityTooLarge)
def too_large(_error):
    return _import_page([{"field": "bundle", "message": "The file is too large: a bundle .zip is a few hundred "
                                                       "kilobytes at most"}], 413)


@blueprint.route("/import", methods=["GET", "POST"])
def import_bundle():
    if request.method == "GET":
        return _import_page()
    upload = request.files.get("bundle")
    if upload is None or not upload.filename:
        return _import_page([{"field": "bundle", "message": "Choose a .zip file to import"}], 422)
    data = upload.stream.read(MAX_ARCHIVE_BYTES + 1)
    if len(data) > MAX_ARCHIVE_BYTES:
        return too_large(None)
    try:
        files = read_zip(data)  # the engine's safe reader: names, sizes, symlinks, zip bombs
        draft = start_draft(service(), by=who(), files=files, note=f"Imported from {upload.filename}"[:500])
    except InvalidData as error:
        return _import_page(error.errors, 422)
    flash(f"{upload.filename} is now draft {draft.id} ({len(files)} files). Check it before you publish it.")
    return redirect(url_for("studio.draft", draft_id=draft.id))
