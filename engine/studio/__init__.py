"""The process studio's engine half: validate, publish, draft, diff and migrate bundles.

Public API (see docs/architecture.md, "Process studio"):

- validate_bundle(files, *, dry_run=True) -> list[Problem]
- publish_bundle(service, files, *, note, by) -> (ProcessVersion, created)
- publish_again(service, old_version, *, note, by) -> ProcessVersion (roll back)
- version_history(db) -> list[dict]; get_version(db, number); version_holding(db, process_id, number=None)
- start_draft / get_draft / list_drafts / save_file / delete_file / validate_draft / publish_draft
- diff_versions(files_a, files_b) -> dict; diff_lines(diff) -> list[str]
- migration_plan(db, from_version, to_version) -> list[dict]; migrate_cases(service, references, to_version, *, by)
- read_bundle(path), read_zip(bytes), read_folder(path), write_zip(files)
"""
from .bundles import read_bundle, read_folder, read_zip, write_zip
from .casemigration import migrate_cases, migration_plan
from .diff import diff_lines, diff_versions
from .drafts import (ProcessDraft, delete_file, get_draft, list_drafts, publish_draft, save_file, start_draft,
                     validate_draft)
from .problems import BundleInvalid, Problem
from .publishing import get_version, publish_again, publish_bundle, version_history, version_holding
from .validation import validate_bundle

__all__ = [
    "BundleInvalid", "Problem", "ProcessDraft", "delete_file", "diff_lines", "diff_versions", "get_draft",
    "get_version", "list_drafts", "migrate_cases", "migration_plan", "publish_again", "publish_bundle",
    "publish_draft", "read_bundle", "read_folder", "read_zip", "save_file", "start_draft", "validate_bundle",
    "validate_draft", "version_history", "version_holding", "write_zip",
]
