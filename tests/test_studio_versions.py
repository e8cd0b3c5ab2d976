"""Studio versions: `casereview publish` validates first (exit 2, one problem a line, nothing
published), folders and zips, unsafe archives, export round trip, drafts, roll back, diff."""
from __future__ import annotations

import io
import json
import re
import stat
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from engine.cli import main
from engine.errors import Conflict, InvalidData
from engine.models import AuditEvent, ProcessVersion
from engine.studio import (BundleInvalid, diff_lines, diff_versions, get_draft, publish_again, publish_bundle,
                           publish_draft, read_zip, save_file, start_draft, validate_draft, version_history,
                           write_zip)
from engine.versions import shipped_files

from .conftest import START

LETTER = "processes/letters/closure.txt"


@pytest.fixture
def database_url(tmp_path):  # the database does not matter here: SQLite only
    return f"sqlite:///{tmp_path / 'casereview.sqlite3'}"


@pytest.fixture(scope="module")
def shipped():
    return shipped_files()


@pytest.fixture(scope="module")
def changed(shipped):
    """The shipped bundle with one letter reworded (valid; validated once for the module)."""
    return {**shipped, LETTER: shipped[LETTER].replace("Subject:", "Subject: [revised]", 1)}


@pytest.fixture
def cli(service, monkeypatch):
    monkeypatch.setenv("CASEREVIEW_DATABASE_URL", service.settings.database_url)
    monkeypatch.setenv("CASEREVIEW_OUTBOX_DIR", str(service.settings.outbox_dir))
    monkeypatch.setenv("CASEREVIEW_CLOCK", START.isoformat())
    runner = CliRunner()

    def run(*args, expect=0):
        result = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == expect, (result.exit_code, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        return result

    return run


def write_folder(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def version_count(service) -> int:
    with service.sessions() as db:
        return db.scalar(select(func.count()).select_from(ProcessVersion))


def test_publish_refuses_an_invalid_bundle_listing_each_problem(service, cli, shipped, tmp_path):
    case_review = shipped["processes/case_review.bpmn"].replace(
        ' default="flow_is_threshold_met_to_start_safety_net"', "")
    follow_up = json.loads(shipped["forms/follow_up.json"])
    follow_up["x-ui"]["order"].append("missing_field")
    folder = write_folder(tmp_path / "bad", {**shipped, "processes/case_review.bpmn": case_review,
                                             "forms/follow_up.json": json.dumps(follow_up)})
    result = cli("publish", folder, "--note", "broken", expect=2)
    lines = result.stderr.strip().splitlines()
    assert "processes/case_review.bpmn: is_threshold_met: gateway-default-flow: " \
           "gateway chooses by condition but has no default flow" in result.stderr
    assert any(re.match(r"forms/follow_up\.json: /: form-ui-hints: .*missing_field", line) for line in lines)
    assert all(re.match(r"^[^:]+: [^:]+: [a-z-]+: .+", line) for line in lines)
    assert result.stdout == ""
    assert version_count(service) == 1


def test_publish_folder_then_export_and_publish_the_zip(service, cli, changed, shipped, tmp_path):
    folder = write_folder(tmp_path / "bundle", changed)
    (folder / "processes" / "__init__.py").write_text("")  # not a bundle file: left alone
    published = json.loads(cli("publish", folder, "--note", "Reworded the closure letter", "--by",
                               "owner@demo.test").stdout)
    assert published == {"version": 2, "bundle": "asb_case_review", "published": True}

    out = tmp_path / "export.zip"
    exported = json.loads(cli("export", "case_review", "--out", out).stdout)
    assert exported["version"] == 2 and exported["files"] == len(changed)
    assert read_zip(out.read_bytes()) == changed
    again = json.loads(cli("publish", out, "--note", "same files").stdout)
    assert again == {"version": 2, "bundle": "asb_case_review", "published": False}

    cli("export", "escalation", "--version", 1, "--out", tmp_path / "v1.zip")
    assert read_zip((tmp_path / "v1.zip").read_bytes()) == shipped
    cli("export", "no_such_process", "--out", tmp_path / "x.zip", expect=5)
    cli("export", "case_review", "--version", 9, "--out", tmp_path / "y.zip", expect=5)
    assert not (tmp_path / "x.zip").exists()
    history = json.loads(cli("versions").stdout)
    assert [(h["version"], h["published_by"], h["note"]) for h in history] == [
        (2, "owner@demo.test", "Reworded the closure letter"), (1, "system", "Shipped process")]


def zip_of(entries: list[tuple[str, bytes]], *, symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


BPMN = ("processes/case_review.bpmn", b"<x/>")
UNSAFE_ARCHIVES = {
    "absolute path": ([BPMN, ("/etc/cron.d/evil", b"x")], None, "absolute"),
    "dot-dot": ([BPMN, ("processes/../../evil.bpmn", b"x")], None, "'..'"),
    "symlink": ([BPMN], "forms/link.json", "symlink"),
    "outside processes and forms": ([BPMN, ("web/static/app.js", b"x")], None, "not a bundle file"),
    "unknown folder": ([BPMN, ("scripts/", b"")], None, "folders other than"),
    "zip bomb": ([BPMN, *[(f"forms/f{n}.json", b"0" * 1_900_000) for n in range(10)]], None, "size limit"),
    "too many files": ([BPMN, *[(f"forms/f{n}.json", b"{}") for n in range(250)]], None, "at most"),
}


@pytest.mark.parametrize("kind", sorted(UNSAFE_ARCHIVES))
def test_unsafe_archives_are_refused(kind):
    entries, symlink, words = UNSAFE_ARCHIVES[kind]
    data = zip_of(entries, symlink=symlink)
    assert len(data) < 200_000  # the bomb is small until it is opened
    with pytest.raises(InvalidData) as refused:
        read_zip(data)
    assert words in str(refused.value.message)


def test_an_unsafe_zip_publishes_nothing(service, cli, shipped, tmp_path):
    path = tmp_path / "evil.zip"
    path.write_bytes(zip_of([*((n, t.encode()) for n, t in shipped.items()), ("../../etc/evil.bpmn", b"x")]))
    result = cli("publish", path, "--note", "evil", expect=2)
    assert "'..' is not allowed" in result.stderr
    assert version_count(service) == 1


def test_write_zip_is_what_read_zip_reads(changed):
    assert read_zip(write_zip(changed)) == changed
    assert write_zip(changed) == write_zip(dict(reversed(list(changed.items()))))


def test_drafts_are_edited_with_a_lock_and_published_once(service, changed, shipped):
    draft = start_draft(service, by="owner@demo.test")
    assert draft.based_on_version == 1 and draft.files == shipped and draft.lock_version == 0
    saved = save_file(service, draft.id, LETTER, changed[LETTER], by="owner@demo.test", lock_version=0)
    assert saved.lock_version == 1
    with pytest.raises(Conflict):  # someone else saved since lock_version 0 was read
        save_file(service, draft.id, LETTER, "Subject: mine\n\nText", by="other@demo.test", lock_version=0)
    with pytest.raises(InvalidData):
        save_file(service, draft.id, "../web/app.py", "x", by="owner@demo.test")
    assert validate_draft(service, draft.id) == []
    version, created = publish_draft(service, draft.id, note="Closure letter", by="owner@demo.test")
    assert created and version.number == 2
    with service.sessions() as db:
        assert get_draft(db, draft.id).published_as == 2
        assert db.scalar(select(ProcessVersion.files).where(ProcessVersion.number == 2)) == changed
        events = [e.detail for e in db.scalars(select(AuditEvent).where(AuditEvent.event == "process_published"))]
        assert events[-1]["draft"] == draft.id and events[-1]["version"] == 2
    with pytest.raises(Conflict):
        save_file(service, draft.id, LETTER, "Subject: x\n\nText", by="owner@demo.test")


def test_a_draft_with_problems_is_not_published(service, shipped):
    draft = start_draft(service, 1, by="owner@demo.test")
    save_file(service, draft.id, "forms/follow_up.json", '{"type": "object", "properties": {"a": {"type": 5}}}',
              by="owner@demo.test")
    problems = validate_draft(service, draft.id, dry_run=False)
    assert [(p.file, p.rule) for p in problems] == [("forms/follow_up.json", "form-json-schema")]
    with pytest.raises(BundleInvalid) as refused:
        publish_draft(service, draft.id, note="broken", by="owner@demo.test")
    assert refused.value.problems[0].file == "forms/follow_up.json"
    assert version_count(service) == 1


def test_publishing_identical_files_is_a_no_op_and_rollback_republishes(service, changed, shipped):
    version, created = publish_bundle(service, shipped, note="again", by="owner@demo.test")
    assert (version.number, created) == (1, False)
    version, created = publish_bundle(service, changed, note="letter", by="owner@demo.test")
    assert (version.number, created) == (2, True)
    rolled = publish_again(service, 1, note="Back to the shipped letter", by="owner@demo.test")
    assert rolled.number == 3 and rolled.files == shipped
    with service.sessions() as db:
        history = version_history(db)
    assert [(h["version"], h["note"], h["published_by"]) for h in history] == [
        (3, "Back to the shipped letter", "owner@demo.test"), (2, "letter", "owner@demo.test"),
        (1, "Shipped process", "system")]
    assert history[0]["sha256"] == history[2]["sha256"]


def test_diff_names_what_changed(shipped):
    after = dict(shipped)
    after["processes/case_review.bpmn"] = (
        shipped["processes/case_review.bpmn"]
        .replace("working_days_from_now(follow_up_working_days)", "working_days_from_now(follow_up_working_days + 5)")
        .replace('value="add_working_days(received_on, 12)"', 'value="add_working_days(received_on, 15)"')
        .replace('name="Follow up with the victim"', 'name="Follow up with the victim and the agencies"')
        .replace('outcome == "extend"', 'outcome in ("extend", "pause")'))
    form = json.loads(shipped["forms/follow_up.json"])
    form["properties"]["feels_safe"] = {"title": "Does the victim feel safe?", "type": "boolean"}
    form["required"].append("feels_safe")
    form["properties"]["outcome"]["enum"].append("pause")
    del form["properties"]["extend_working_days"]["maximum"]
    after["forms/follow_up.json"] = json.dumps(form)
    after["processes/threshold.dmn"] = shipped["processes/threshold.dmn"].replace("<text>&gt;= 3</text>",
                                                                                  "<text>&gt;= 4</text>")
    after[LETTER] = shipped[LETTER] + "\nA new closing line.\n"
    del after["processes/letters/withdrawal.txt"]

    diff = diff_versions(shipped, after)
    elements = {e["id"]: e for e in diff["elements"]["changed"]}
    assert elements["follow_up_due"]["type"] == "intermediateCatchEvent"
    assert elements["follow_up_due"]["changes"] == [{"attribute": "timer",
                                                     "before": "timeDate: working_days_from_now(follow_up_working_days)",
                                                     "after": "timeDate: working_days_from_now(follow_up_working_days + 5)"}]
    assert elements["verify_incidents"]["changes"][0]["attribute"] == "dueDate"
    assert {"attribute": "name", "before": "Follow up with the victim",
            "after": "Follow up with the victim and the agencies"} in elements["follow_up"]["changes"]
    assert [f["id"] for f in diff["flows"]["changed"]] == ["flow_follow_up_decision_to_extend_follow_up"]
    rules = diff["decisions"]["changed"][0]["rules"]["changed"]
    assert rules == [{"id": "rule_asb_three_in_six_months",
                      "changes": [{"attribute": "when occasions", "before": ">= 3", "after": ">= 4"}]}]
    fields = diff["forms"]["changed"][0]["fields"]
    assert fields["added"] == [{"field": "feels_safe", "title": "Does the victim feel safe?", "type": "boolean",
                                "required": True}]
    changed_fields = {f["field"]: f["changes"] for f in fields["changed"]}
    assert changed_fields["outcome"] == [{"attribute": "enum", "before": ["close", "extend", "reconvene"],
                                          "after": ["close", "extend", "reconvene", "pause"]}]
    assert changed_fields["extend_working_days"] == [{"attribute": "maximum", "before": 130, "after": None}]
    letter = diff["letters"]["changed"][0]
    assert letter["letter"] == LETTER and "+A new closing line." in letter["diff"]
    assert diff["letters"]["removed"] == ["processes/letters/withdrawal.txt"]
    assert diff["files"]["removed"] == ["processes/letters/withdrawal.txt"]
    lines = diff_lines(diff)
    assert "form forms/follow_up.json: field added: feels_safe" in lines
    assert any(line.startswith("changed: intermediateCatchEvent follow_up_due") for line in lines)
    assert diff_versions(shipped, shipped)["elements"] == {"added": [], "removed": [], "changed": []}
