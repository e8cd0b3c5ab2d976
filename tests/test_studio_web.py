"""The process studio's pages: only process owners get in; drafts from a version; task and timer
properties and the form editor rewrite the draft's files; problems are listed with links to
their element; publishing needs a note; differences, roll back, moving running cases, and a
.zip round trip. SQLite only: the engine's studio tests cover both databases."""
from __future__ import annotations

import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.clock import FixedClock
from engine.config import Settings
from engine.demo import seed_accounts
from engine.models import AuditEvent, Case, ProcessVersion
from engine.scenarios import application
from engine.service import CaseReview
from engine.studio import get_draft, read_zip, save_file, start_draft, write_zip
from engine.versions import publish, shipped_files

from .conftest import START
from .web_helpers import make_app, page, sign_in, text_of

CASE_REVIEW = "processes/case_review.bpmn"
OWNER = "owner@demo.test"


@pytest.fixture(scope="module")
def seeded_database(tmp_path_factory) -> Path:
    """One migrated SQLite database with the shipped version and the demo accounts for the module;
    each test works on its own copy (pages, not databases, are tested here: SQLite only)."""
    path = tmp_path_factory.mktemp("studio") / "seeded.sqlite3"
    seeded = CaseReview(Settings(database_url=f"sqlite:///{path}", outbox_dir=path.parent / "outbox",
                                 demo_password="test-password"), FixedClock(START))
    seeded.init()
    seed_accounts(seeded)
    seeded.engine.dispose()  # the last connection closing folds the write-ahead log into the file
    return path


@pytest.fixture
def service(seeded_database, tmp_path):
    path = tmp_path / "casereview.sqlite3"
    shutil.copyfile(seeded_database, path)
    service = CaseReview(Settings(database_url=f"sqlite:///{path}", outbox_dir=tmp_path / "outbox",
                                  demo_password="test-password"), FixedClock(START))
    yield service
    service.engine.dispose()


@pytest.fixture
def app(service):
    return make_app(service)


@pytest.fixture
def owner(app):
    client = app.test_client()
    sign_in(client, OWNER)
    return client


@pytest.fixture
def draft_id(service):
    return start_draft(service, 1, by=OWNER).id


def draft_files(service, draft_id: int) -> dict[str, str]:
    with service.sessions() as db:
        return dict(get_draft(db, draft_id).files)


def events(service, name: str) -> list[dict]:
    with service.sessions() as db:
        return [e.detail for e in db.scalars(select(AuditEvent).where(AuditEvent.event == name)
                                             .order_by(AuditEvent.id))]


def version_count(service) -> int:
    with service.sessions() as db:
        return db.scalar(select(func.count()).select_from(ProcessVersion))


def error_links(response) -> list[str]:
    return [a.get("href") for a in page(response).cssselect(".govuk-error-summary a")]


def preview_text(response) -> str:
    return " ".join(page(response).cssselect(".app-form-preview")[0].text_content().split())


# ----- who may use it ---------------------------------------------------------------------
def test_only_process_owners_use_the_studio(app, service, draft_id):
    anonymous = app.test_client()
    assert anonymous.get("/studio/").status_code == 302
    assert "/sign-in" in anonymous.get("/studio/").location
    for email in ("coordinator@demo.test", "admin@demo.test", "police@demo.test", "chair@demo.test",
                  "reviewer@demo.test"):
        client = app.test_client()
        sign_in(client, email)
        assert client.get("/studio/").status_code == 403, email
        assert client.get(f"/studio/drafts/{draft_id}").status_code == 403, email
        assert client.post("/studio/drafts", data={"version": "1"}).status_code == 403, email
        assert client.post(f"/studio/drafts/{draft_id}/files/{CASE_REVIEW}",
                           json={"text": "<x/>", "lock_version": 0}).status_code == 403, email
        assert client.get("/studio/versions/1/bundle.zip").status_code == 403, email
        assert "Process studio" not in text_of(client.get("/change-password"))
    owner = app.test_client()
    sign_in(owner, OWNER)
    home = owner.get("/studio/")
    assert home.status_code == 200
    assert [a.text_content().strip() for a in page(home).cssselect(".govuk-service-navigation a")
            if a.get("href") == "/studio/"] == ["Process studio"]


def test_every_studio_form_carries_a_csrf_token_and_posts_without_one_are_refused(service, draft_id):
    app = make_app(service, WTF_CSRF_ENABLED=True)
    client = app.test_client()
    sign_in_page = page(client.get("/sign-in"))
    token = sign_in_page.cssselect("input[name=csrf_token]")[0].get("value")
    client.post("/sign-in", data={"email": OWNER, "password": "test-password", "csrf_token": token})
    for url in ("/studio/", f"/studio/drafts/{draft_id}/timer/history_reminder/{CASE_REVIEW}",
                f"/studio/drafts/{draft_id}/forms/follow_up.json/add", f"/studio/drafts/{draft_id}/publish",
                "/studio/import", "/studio/versions/1/roll-back"):
        for form in page(client.get(url)).cssselect("form[method=post]"):
            assert form.cssselect("input[name=csrf_token]"), (url, form.get("action"))
    timer_page = f"/studio/drafts/{draft_id}/timer/history_reminder/{CASE_REVIEW}"
    assert client.post(timer_page, data={"unit": "working", "days": "7"}).status_code == 400
    modeler = page(client.get(f"/studio/drafts/{draft_id}/model/{CASE_REVIEW}")).cssselect("#studio-modeler")[0]
    text = draft_files(service, draft_id)[CASE_REVIEW]
    save = f"/studio/drafts/{draft_id}/files/{CASE_REVIEW}"
    assert client.post(save, json={"text": text, "lock_version": 0}).status_code == 400  # no token
    saved = client.post(save, json={"text": text, "lock_version": 0},
                        headers={"X-CSRFToken": modeler.get("data-csrf-token")})
    assert saved.status_code == 200 and saved.get_json()["lock_version"] == 1


# ----- drafts -----------------------------------------------------------------------------
def test_a_draft_starts_from_a_version_and_lists_its_files(owner, service):
    home = page(owner.get("/studio/"))
    assert home.cssselect("select[name=version] option[selected]")[0].get("value") == "1"
    assert "case_review" in [c.text_content() for c in home.cssselect("td code")]
    started = owner.post("/studio/drafts", data={"version": "1"})
    draft_id = int(started.location.rsplit("/", 1)[-1])
    draft = owner.get(started.location)
    assert "Draft {} started from version 1".format(draft_id) in text_of(draft)
    links = [a.get("href") for a in page(draft).cssselect("main a")]
    assert f"/studio/drafts/{draft_id}/model/{CASE_REVIEW}" in links
    assert f"/studio/drafts/{draft_id}/properties/{CASE_REVIEW}" in links
    assert f"/studio/drafts/{draft_id}/model/processes/threshold.dmn" in links
    assert f"/studio/drafts/{draft_id}/forms/follow_up.json" in links
    assert f"/studio/drafts/{draft_id}/letters/closure.txt" in links
    assert events(service, "draft_started")[-1] == {"draft": draft_id, "bundle": "asb_case_review",
                                                    "from_version": 1}
    assert f"Draft {draft_id}" in text_of(owner.get("/studio/"))  # listed as in progress


def test_the_modeler_page_passes_its_file_and_element_and_saves_xml_to_the_draft_only(owner, service, draft_id):
    modeler = page(owner.get(f"/studio/drafts/{draft_id}/model/{CASE_REVIEW}?element=verify_incidents"))
    container = modeler.cssselect("#studio-modeler")[0]
    assert container.get("data-element") == "verify_incidents" and container.get("data-kind") == "bpmn"
    assert container.get("aria-labelledby") and modeler.cssselect(f"#{container.get('aria-labelledby')}")
    scripts = [s.get("src") for s in modeler.cssselect("script")]
    assert "/static/vendor/bpmn-js/bpmn-modeler.production.min.js" in scripts
    assert not [s for s in modeler.cssselect("script") if not s.get("src")]  # no inline script
    assert "properties" in modeler.cssselect(".app-modeler__fallback a")[0].get("href")
    table_page = owner.get(f"/studio/drafts/{draft_id}/model/processes/threshold.dmn")
    table = page(table_page)
    assert "/static/vendor/dmn-js/dmn-modeler.production.min.js" in [s.get("src") for s in table.cssselect("script")]
    # dmn-js's two style attributes are allowed by hash on that page only; nothing inline anywhere.
    policy = table_page.headers["Content-Security-Policy"]
    assert re.search(r"style-src-attr 'unsafe-hashes'( 'sha256-[A-Za-z0-9+/]+=+'){2};", policy)
    assert "unsafe-inline" not in policy and "script-src 'self';" in policy
    diagram_policy = owner.get(f"/studio/drafts/{draft_id}/model/{CASE_REVIEW}").headers["Content-Security-Policy"]
    assert "unsafe-hashes" not in diagram_policy

    url = container.get("data-save-url")
    original = owner.get(container.get("data-file-url")).get_data(as_text=True)
    changed = original.replace('name="Verify the incident history"', 'name="Check the incident history"')
    saved = owner.post(url, json={"text": changed, "lock_version": 0})
    assert saved.status_code == 200 and saved.get_json()["lock_version"] == 1
    assert draft_files(service, draft_id)[CASE_REVIEW] == changed
    assert events(service, "draft_file_saved")[-1]["file"] == CASE_REVIEW
    stale = owner.post(url, json={"text": original, "lock_version": 0})
    assert stale.status_code == 409 and "someone else" in stale.get_json()["error"]
    entity = ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
              '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&e;</bpmn:definitions>')
    refused = owner.post(url, json={"text": entity, "lock_version": 1})
    assert refused.status_code == 422 and "DOCTYPE" in refused.get_json()["error"]
    not_bpmn = owner.post(url, json={"text": "<html><body/></html>", "lock_version": 1})
    assert not_bpmn.status_code == 422 and "BPMN" in not_bpmn.get_json()["error"]
    assert draft_files(service, draft_id)[CASE_REVIEW] == changed  # nothing refused was kept
    assert version_count(service) == 1  # saving publishes nothing


# ----- properties without XML -------------------------------------------------------------
def test_properties_change_timers_and_a_due_date_and_the_saved_xml_says_so(owner, service, draft_id):
    listing = owner.get(f"/studio/drafts/{draft_id}/properties/{CASE_REVIEW}")
    rows = {r.cssselect("td")[0].text_content(): " ".join(r.text_content().split())
            for r in page(listing).cssselect("table")[1].cssselect("tbody tr")}
    assert "5 working days" in rows["Reminder after 5 working days"]
    assert "at_start_of(panel_date)" in rows["Panel day"]

    timer = f"/studio/drafts/{draft_id}/timer/history_reminder/{CASE_REVIEW}"
    form = page(owner.get(timer))
    assert form.cssselect("input[name=days]")[0].get("value") == "5"
    assert form.cssselect("input[name=unit][value=working]")[0].get("checked") is not None
    saved = owner.post(timer, data={"unit": "working", "days": "7", "lock_version": "0"})
    assert saved.status_code == 302
    xml = draft_files(service, draft_id)[CASE_REVIEW]
    assert re.search(r'id="history_reminder" name="Reminder after 7 working days"', xml)
    assert "working_days_from_now(7)</bpmn:timeDate>" in xml and "working_days_from_now(5)" not in xml
    assert "now waits 7 working days" in text_of(owner.get(saved.location))

    deadline = f"/studio/drafts/{draft_id}/timer/consent_deadline/{CASE_REVIEW}"
    assert owner.post(deadline, data={"unit": "calendar", "days": "14", "lock_version": "1"}).status_code == 302
    xml = draft_files(service, draft_id)[CASE_REVIEW]
    assert '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"P14D"</bpmn:timeDuration>' in xml
    assert 'name="No reply in 14 calendar days"' in xml

    typed = owner.post(timer, data={"unit": "working", "days": "seven", "lock_version": "2"})
    assert typed.status_code == 422 and error_links(typed) == ["#timer-days"]
    assert page(typed).cssselect("input[name=days]")[0].get("value") == "seven"

    task = f"/studio/drafts/{draft_id}/task/verify_incidents/{CASE_REVIEW}"
    form = page(owner.get(task))
    assert form.cssselect("input[name=due_days]")[0].get("value") == "12"
    assert form.cssselect("select[name=due_from] option[selected]")[0].get("value") == "received_on"
    assert {o.get("value") for o in form.cssselect("select[name=form] option")} >= {"verify_incidents.json",
                                                                                    "follow_up.json"}
    assert [i.get("value") for i in form.cssselect("input[name=lane]")] == ["victim", "applicant", "coordinator", "partner",
                                                                            "chair"]
    answers = {"form": "verify_incidents.json", "lane": "coordinator", "agency": "", "due": "working",
               "due_from": "received_on", "due_days": "14", "lock_version": "2"}
    assert owner.post(task, data=answers).status_code == 302
    xml = draft_files(service, draft_id)[CASE_REVIEW]
    assert '<spiffworkflow:property name="dueDate" value="add_working_days(received_on, 14)" />' in xml

    partner = owner.post(task, data={**answers, "lane": "partner", "due_days": "-2", "lock_version": "3"})
    assert partner.status_code == 422 and error_links(partner) == ["#task-agency"]
    assert page(partner).cssselect("input[name=lane][value=partner]")[0].get("checked") is not None
    assert page(partner).cssselect("input[name=due_days]")[0].get("value") == "-2"
    moved = owner.post(task, data={**answers, "lane": "partner", "agency": '"police"', "lock_version": "3"})
    assert moved.status_code == 302
    xml = draft_files(service, draft_id)[CASE_REVIEW]
    partner_lane = xml[xml.index('name="partner"'):xml.index("</bpmn:lane>", xml.index('name="partner"'))]
    assert "<bpmn:flowNodeRef>verify_incidents</bpmn:flowNodeRef>" in partner_lane
    assert '<spiffworkflow:property name="agency" value="&quot;police&quot;" />' in xml
    assert "Always Exampleshire Police" in text_of(owner.get(f"/studio/drafts/{draft_id}/properties/{CASE_REVIEW}"))
    assert [e["file"] for e in events(service, "draft_file_saved")] == [CASE_REVIEW] * 4


# ----- the form editor --------------------------------------------------------------------
def test_form_editor_changes_a_label_adds_a_field_and_the_preview_shows_both(owner, service, draft_id):
    editor = f"/studio/drafts/{draft_id}/forms/follow_up.json"
    before = owner.get(editor)
    assert "What the victim told you" in preview_text(before)
    assert "Follow up with the victim" in text_of(before)  # the task using the form

    field = f"{editor}/fields/victim_feedback"
    answers = {"title": "What the victim said", "hint": "In their own words.", "type": "textarea",
               "required": "yes", "position": "3", "options": "", "lock_version": "0"}
    previewed = owner.post(field, data={**answers, "action": "preview"})
    assert "What the victim said" in preview_text(previewed)
    assert json.loads(draft_files(service, draft_id)["forms/follow_up.json"])["properties"]["victim_feedback"][
        "title"] == "What the victim told you"  # a preview saves nothing
    assert owner.post(field, data={**answers, "action": "save"}).status_code == 302

    added = owner.post(f"{editor}/add", data={
        "title": "Does the victim feel safe now?", "hint": "", "type": "choice", "required": "yes",
        "options": "yes | Yes, they feel safe\nno | No\nNot sure", "name": "", "position": "1", "lock_version": "1",
        "action": "save"})
    assert added.status_code == 302
    schema = json.loads(draft_files(service, draft_id)["forms/follow_up.json"])
    assert schema["properties"]["does_the_victim_feel_safe_now"]["enum"] == ["yes", "no", "not_sure"]
    assert schema["x-ui"]["labels"]["does_the_victim_feel_safe_now"]["yes"] == "Yes, they feel safe"
    assert schema["x-ui"]["order"][0] == "does_the_victim_feel_safe_now"
    assert "does_the_victim_feel_safe_now" in schema["required"]

    after = owner.get(editor)
    preview = page(after).cssselect(".app-form-preview")[0]
    labels = [" ".join(e.text_content().split()) for e in preview.cssselect("label, legend")]
    assert labels[0] == "Does the victim feel safe now?"  # first, as the position says
    assert "What the victim said" in labels and "Yes, they feel safe" in labels and "Not sure" in labels
    assert "In their own words." in preview_text(after)
    assert [r.cssselect("td")[1].text_content().split("Field name")[0].strip()
            for r in page(after).cssselect("tbody tr")][0] == "Does the victim feel safe now?"


def test_invalid_form_edits_give_an_error_summary_and_keep_what_was_typed(owner, service, draft_id):
    editor = f"/studio/drafts/{draft_id}/forms/follow_up.json"
    typed = {"title": "", "hint": "Typed hint", "type": "choice", "required": "no", "options": "only one",
             "position": "9", "lock_version": "0", "action": "save"}
    refused = owner.post(f"{editor}/fields/outcome", data=typed)
    assert refused.status_code == 422
    assert error_links(refused) == ["#studio-field-title", "#studio-field-options", "#studio-field-position"]
    form = page(refused)
    assert form.cssselect("#studio-field-hint")[0].text_content().strip() == "Typed hint"
    assert form.cssselect("#studio-field-options")[0].text_content().strip() == "only one"
    assert form.cssselect("#studio-field-position")[0].get("value") == "9"
    assert form.cssselect("input[name=type][value=choice]")[0].get("checked") is not None
    assert form.cssselect("title")[0].text_content().startswith("Error:")

    taken = owner.post(f"{editor}/add", data={"title": "Outcome again", "name": "outcome", "type": "text",
                                              "required": "no", "position": "", "lock_version": "0"})
    assert taken.status_code == 422 and error_links(taken) == ["#studio-field-name"]
    assert page(taken).cssselect("#studio-field-name")[0].get("value") == "outcome"
    in_condition = owner.post(f"{editor}/fields/outcome/remove", data={"lock_version": "0"})
    assert in_condition.status_code == 422 and "condition" in text_of(in_condition)
    assert draft_files(service, draft_id)["forms/follow_up.json"] == shipped_files()["forms/follow_up.json"]


# ----- check and publish ------------------------------------------------------------------
def test_check_lists_problems_by_file_with_links_to_the_element_and_publishing_is_refused(owner, service, draft_id):
    files = draft_files(service, draft_id)
    broken = files[CASE_REVIEW].replace('value="add_working_days(received_on, 12)"',
                                        'value="received_on.__class__"')
    save_file(service, draft_id, CASE_REVIEW, broken, by=OWNER)
    check = owner.get(f"/studio/drafts/{draft_id}/check")
    assert check.status_code == 200
    assert [h.text_content() for h in page(check).cssselect("main h3")] == [CASE_REVIEW]
    row = [r for r in page(check).cssselect("tbody tr") if "verify_incidents" in r.text_content()][0]
    assert "sandbox" in row.text_content()
    link = row.cssselect("a")[0]
    assert link.get("href") == f"/studio/drafts/{draft_id}/model/{CASE_REVIEW}?element=verify_incidents"
    assert link.text_content() == "Show verify_incidents in the diagram"

    publish_page = f"/studio/drafts/{draft_id}/publish"
    refused = owner.post(publish_page, data={"note": "Try it"})
    assert refused.status_code == 422 and "was not published" in text_of(refused)
    assert page(refused).cssselect("textarea[name=note]")[0].text_content().strip() == "Try it"
    assert "verify_incidents" in text_of(refused)
    assert version_count(service) == 1


def test_publish_needs_a_note_then_the_version_history_and_diff_show_the_change(owner, service, draft_id):
    owner.post(f"/studio/drafts/{draft_id}/timer/history_reminder/{CASE_REVIEW}",
               data={"unit": "working", "days": "7", "lock_version": "0"})
    owner.post(f"/studio/drafts/{draft_id}/forms/follow_up.json/fields/victim_feedback",
               data={"title": "What the victim said", "hint": "", "type": "textarea", "required": "yes",
                     "position": "3", "lock_version": "1", "action": "save"})
    changes = text_of(owner.get(f"/studio/drafts/{draft_id}/changes"))
    assert "Reminder after 7 working days" in changes and "working_days_from_now(7)" in changes

    publish_page = f"/studio/drafts/{draft_id}/publish"
    no_note = owner.post(publish_page, data={"note": "  "})
    assert no_note.status_code == 422 and error_links(no_note) == ["#publish-note"]
    published = owner.post(publish_page, data={"note": "Remind agencies after 7 working days"})
    assert published.status_code == 302 and published.location.endswith("/studio/versions")
    assert version_count(service) == 2
    assert events(service, "process_published")[-1]["note"] == "Remind agencies after 7 working days"

    history = owner.get("/studio/versions")
    first_row = page(history).cssselect("tbody tr")[0]
    assert "Remind agencies after 7 working days" in first_row.text_content()
    assert "owner@demo.test" in first_row.text_content()
    assert "Version 2 is published" in text_of(history)
    assert owner.get(f"/studio/drafts/{draft_id}/publish").status_code == 409  # read-only now

    diff = owner.get("/studio/versions/compare?from=1&to=2")
    captions = [" ".join(c.text_content().split()) for c in page(diff).cssselect("caption")]
    assert any(c.startswith("Changed: Reminder after 7 working days") for c in captions)
    timer_table = page(diff).cssselect("table")[[i for i, c in enumerate(captions) if "history_reminder" in c][0]]
    cells = [" ".join(td.text_content().split()) for td in timer_table.cssselect("tbody tr")[-1].cssselect("td")]
    assert cells == ["timeDate: working_days_from_now(5)", "timeDate: working_days_from_now(7)"]
    assert "Field changed: victim_feedback" in captions
    assert owner.get("/studio/versions/compare?from=1&to=9").status_code == 404


def test_roll_back_asks_for_a_note_and_publishes_the_old_files_again(owner, service):
    shipped = shipped_files()
    letter = "processes/letters/closure.txt"
    with service.transaction() as db:
        publish(db, {**shipped, letter: shipped[letter] + "\nA new closing line.\n"}, note="Longer closure letter",
                by=OWNER, now=service.now())
    confirm = owner.get("/studio/versions/1/roll-back")
    assert "Roll back to version 1?" in text_of(confirm)
    assert "-A new closing line." in text_of(confirm)  # what going back removes
    refused = owner.post("/studio/versions/1/roll-back", data={"note": ""})
    assert refused.status_code == 422 and error_links(refused) == ["#roll-back-note"]
    rolled = owner.post("/studio/versions/1/roll-back", data={"note": "The extra line confused people"})
    assert rolled.status_code == 302
    with service.sessions() as db:
        latest = db.scalar(select(ProcessVersion).order_by(ProcessVersion.number.desc()).limit(1))
        assert (latest.number, latest.note, latest.files) == (3, "The extra line confused people", shipped)
    assert events(service, "process_published")[-1]["republished_from"] == 1


# ----- running cases ----------------------------------------------------------------------
def test_migration_screen_moves_the_movable_cases_in_one_step_and_says_why_not_for_the_rest(owner, service):
    waiting_at_history = service.apply(application(START.date()))["reference"]
    waiting_for_consent = service.apply(application(START.date(), third_party=True))["reference"]
    renamed = shipped_files()
    renamed[CASE_REVIEW] = renamed[CASE_REVIEW].replace("provide_incident_history", "provide_history")
    with service.transaction() as db:
        publish(db, renamed, note="Renamed the history step", by=OWNER, now=service.now())

    screen = owner.get("/studio/cases")  # the oldest version with open cases → the latest
    rows = {r.cssselect("td")[0].text_content(): r for r in page(screen).cssselect("tbody tr")}
    assert "Yes" in rows[waiting_for_consent].text_content()
    assert "No" in rows[waiting_at_history].text_content()
    assert "provide_incident_history (ready) is not in version 2" in rows[waiting_at_history].text_content()
    move_link = page(screen).cssselect("a.govuk-button")[0]
    assert move_link.text_content() == "Move 1 case to version 2"

    confirm = owner.get(move_link.get("href"))
    assert waiting_for_consent in text_of(confirm) and "cannot move" in text_of(confirm)
    hidden = {i.get("name"): i.get("value") for i in page(confirm).cssselect("form input[type=hidden]")
              if i.get("name") != "case"}
    cases = [i.get("value") for i in page(confirm).cssselect("form input[name=case]")]
    moved = owner.post("/studio/cases/move", data={**hidden, "case": cases})
    assert moved.status_code == 200
    assert "1 case moved to version 2" in text_of(moved)
    refused = page(moved).cssselect("tbody tr")
    assert [r.cssselect("td")[0].text_content() for r in refused] == [waiting_at_history]
    with service.sessions() as db:
        on = dict(db.execute(select(Case.reference, ProcessVersion.number)
                             .join(ProcessVersion, Case.process_version_id == ProcessVersion.id)).all())
    assert on == {waiting_for_consent: 2, waiting_at_history: 1}
    assert [e["to_version"] for e in events(service, "case_migrated")] == [2]


# ----- import and export ------------------------------------------------------------------
def test_export_then_import_makes_a_draft_and_unsafe_archives_are_refused(owner, service):
    exported = owner.get("/studio/versions/1/bundle.zip")
    assert exported.mimetype == "application/zip"
    assert "version-1.zip" in exported.headers["Content-Disposition"]
    files = read_zip(exported.data)
    assert files == shipped_files()

    letter = "processes/letters/closure.txt"
    edited = write_zip({**files, letter: files[letter] + "\nWith thanks.\n"})
    imported = owner.post("/studio/import", data={"bundle": (io.BytesIO(edited), "mine.zip")},
                          content_type="multipart/form-data")
    assert imported.status_code == 302
    draft_id = int(imported.location.rsplit("/", 1)[-1])
    assert draft_files(service, draft_id)[letter].endswith("With thanks.\n")
    assert events(service, "draft_started")[-1]["imported"] is True
    draft_page = owner.get(imported.location)
    row = [r for r in page(draft_page).cssselect("tbody tr") if letter in r.text_content()][0]
    assert "Changed" in row.text_content()

    hostile = io.BytesIO()
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("../web/app.py", "print('hi')")
        archive.writestr(CASE_REVIEW, files[CASE_REVIEW])
    refused = owner.post("/studio/import", data={"bundle": (io.BytesIO(hostile.getvalue()), "bad.zip")},
                         content_type="multipart/form-data")
    assert refused.status_code == 422 and error_links(refused) == ["#bundle"]
    assert "'..' is not allowed" in text_of(refused)
    not_zip = owner.post("/studio/import", data={"bundle": (io.BytesIO(b"hello"), "notes.zip")},
                         content_type="multipart/form-data")
    assert not_zip.status_code == 422 and "not a zip file" in text_of(not_zip)
    nothing = owner.post("/studio/import", data={}, content_type="multipart/form-data")
    assert nothing.status_code == 422 and "Choose a .zip file" in text_of(nothing)


# ----- what a form's button says, and what it shows beside it ----------------------------------------
def test_the_form_page_edits_what_the_button_says(owner, service, draft_id):
    editor = f"/studio/drafts/{draft_id}/forms/follow_up.json"
    shown = page(owner.get(editor))
    assert shown.get_element_by_id("submit").get("value") == "Record the follow-up"
    assert " ".join(shown.cssselect(".app-form-preview button")[0].text_content().split()) == "Record the follow-up"

    too_long = owner.post(f"{editor}/submit", data={"submit": "Record " * 12, "lock_version": "0"})
    assert too_long.status_code == 422 and error_links(too_long) == ["#submit"]
    assert page(too_long).get_element_by_id("submit").get("value") == ("Record " * 12)  # what was typed is kept
    assert "60 characters or fewer" in text_of(too_long)

    assert owner.post(f"{editor}/submit", data={"submit": "Record the talk with the victim",
                                                "lock_version": "0"}).status_code == 302
    assert json.loads(draft_files(service, draft_id)["forms/follow_up.json"])["x-ui"]["submit"] == \
        "Record the talk with the victim"
    assert owner.post(f"{editor}/submit", data={"submit": "  ", "lock_version": "1"}).status_code == 302
    assert "submit" not in json.loads(draft_files(service, draft_id)["forms/follow_up.json"])["x-ui"]
    assert page(owner.get(editor)).cssselect(".app-form-preview button")[0].text_content().strip() == \
        "Complete the task"  # no words of its own: the task page's default


def test_the_json_page_refuses_a_context_the_task_page_cannot_show(owner, service, draft_id):
    editor = f"/studio/drafts/{draft_id}/forms/follow_up.json/json"
    schema = json.loads(draft_files(service, draft_id)["forms/follow_up.json"])
    schema["x-ui"]["context"].append({"kind": "gossip", "title": "Rumours"})
    schema["x-ui"]["prefill"] = {"victim_feedback": "victim statement!"}
    refused = owner.post(editor, data={"text": json.dumps(schema, indent=2), "lock_version": "0"})
    assert refused.status_code == 422
    said = text_of(refused)
    assert "x-ui.context item 5: kind 'gossip' is not one of data, threshold, timeline, actions, facts" in said
    assert "x-ui.prefill.victim_feedback must be a path into the task's data" in said
    assert draft_files(service, draft_id)["forms/follow_up.json"] == shipped_files()["forms/follow_up.json"]
