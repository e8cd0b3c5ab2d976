"""Process versions: publish a bundle of BPMN, DMN, form and letter files as an immutable,
numbered version, and compile each version once (parsed specs cached per version id)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser

from .errors import InvalidProcess
from .models import ProcessVersion
from .safexml import UnsafeXML, parse_xml
from .state import StateSerializer

BUNDLE = "asb_case_review"
MAIN_PROCESS = "case_review"
THRESHOLD_PROCESS = "threshold_check"
SHIPPED_ROOT = Path(__file__).resolve().parent.parent


def shipped_files(root: Path = SHIPPED_ROOT) -> dict[str, str]:
    """The bundle shipped in processes/ and forms/, keyed by path relative to `root`."""
    files: dict[str, str] = {}
    for pattern in ("processes/*.bpmn", "processes/*.dmn", "processes/letters/*.txt", "forms/*.json"):
        for path in sorted(root.glob(pattern)):
            files[path.relative_to(root).as_posix()] = path.read_text(encoding="utf-8")
    return files


def bundle_sha256(files: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()


@dataclass
class CompiledVersion:
    """Everything the runtime needs from one version, built once and shared read-only."""

    id: int
    number: int
    specs: dict[str, tuple[Any, dict]]
    forms: dict[str, dict]
    letters: dict[str, str]
    message_starts: dict[str, str]
    threshold_inputs: list[tuple[str, str]]
    serializer: StateSerializer = field(repr=False)
    validators: dict[str, Draft202012Validator] = field(default_factory=dict, repr=False)
    #: The elements recording what the reports count (engine/statutoryfacts.py).
    statutory_facts: tuple = ()

    def form_validator(self, form_name: str) -> Draft202012Validator:
        if form_name not in self.validators:
            from .forms import make_validator

            self.validators[form_name] = make_validator(self.forms[form_name])
        return self.validators[form_name]


def compile_files(files: dict[str, str], version_id: int = 0, number: int = 0) -> CompiledVersion:
    """Parse and check a bundle; raise InvalidProcess listing every problem found."""
    errors: list[dict] = []
    parser = SpiffBpmnParser(validator=VALIDATOR)
    for name, text in sorted(files.items()):
        try:
            if name.endswith(".bpmn"):
                parser.add_bpmn_xml(parse_xml(text, name), filename=name)
            elif name.endswith(".dmn"):
                parser.add_dmn_xml(parse_xml(text, name), filename=name)
        except UnsafeXML as exc:
            errors.append({"file": name, "element": None, "rule": "xml-safe", "message": str(exc)})
        except ValidationException as exc:
            errors.append({"file": name, "element": getattr(exc, "id", None), "rule": "bpmn-schema",
                           "message": str(exc).strip()})
    forms: dict[str, dict] = {}
    for name, text in files.items():
        if name.startswith("forms/") and name.endswith(".json"):
            try:
                schema = json.loads(text)
                Draft202012Validator.check_schema(schema)
                forms[Path(name).name] = schema
            except (ValueError, SchemaError) as exc:
                errors.append({"file": name, "element": None, "rule": "form-json-schema",
                               "message": f"not a valid JSON Schema: {exc}"})
    if errors:
        raise InvalidProcess(errors)

    specs: dict[str, tuple[Any, dict]] = {}
    try:
        for process_id in parser.get_process_ids():
            specs[process_id] = (parser.get_spec(process_id), parser.get_subprocess_specs(process_id))
            _connect_loop_merges(specs[process_id])
    except ValidationException as exc:
        raise InvalidProcess([{"file": getattr(exc, "file_name", None), "element": getattr(exc, "id", None),
                               "rule": "bpmn-structure", "message": str(exc).strip()}]) from None
    if MAIN_PROCESS not in specs:
        raise InvalidProcess([{"file": None, "element": None, "rule": "main-process",
                               "message": f"no process with id {MAIN_PROCESS!r}"}])

    from .checks import check_bundle  # late import: checks needs the compiled specs
    from .statutoryfacts import read_fact_elements

    letters = {Path(n).stem: t for n, t in files.items() if n.startswith("processes/letters/")}
    compiled = CompiledVersion(
        id=version_id,
        number=number,
        specs=specs,
        forms=forms,
        letters=letters,
        message_starts=_message_starts(specs),
        threshold_inputs=_threshold_inputs(parser),
        serializer=StateSerializer(specs),
        statutory_facts=read_fact_elements(specs),
    )
    problems = check_bundle(compiled)
    if problems:
        raise InvalidProcess(problems)
    return compiled


def _connect_loop_merges(spec_pair) -> None:
    """A multi-instance (or loop) task learns that an instance finished through its child spec's
    completed_event. SpiffWorkflow connects it when the task first creates instances, or when it
    deserializes a spec; for parsed specs shared across loads, an instance started before this
    process did (a restart, or a case moved to another version) would otherwise never be merged
    and the task would never complete. Connect every one up front, as the deserializer does."""
    spec, subprocess_specs = spec_pair
    for process in [spec, *subprocess_specs.values()]:
        for task_spec in process.task_specs.values():
            if isinstance(task_spec, LoopTask):
                child = process.task_specs.get(task_spec.task_spec)
                if child is not None and not child.completed_event.is_connected(task_spec.merge_child):
                    child.completed_event.connect(task_spec.merge_child)


def _message_starts(specs) -> dict[str, str]:
    """message name → id of the process a message of that name starts."""
    starts = {}
    for process_id, (spec, _subs) in specs.items():
        for task_spec in spec.task_specs.values():
            event = getattr(task_spec, "event_definition", None)
            if isinstance(task_spec, StartEvent) and isinstance(event, MessageEventDefinition):
                starts[event.name] = process_id
    return starts


def _threshold_inputs(parser) -> list[tuple[str, str]]:
    """(input id, expression) of the threshold table, so counts come from the table's own parameters."""
    dmn_parser = parser.dmn_parsers.get("threshold")
    if dmn_parser is None:
        return []
    dmn_parser.parse()
    return [(item.id, item.expression) for item in dmn_parser.decision.decisionTables[0].inputs]


# Keyed by content hash: the same bundle in several databases (tests, migrations) compiles once.
_cache: dict[str, CompiledVersion] = {}
_cache_lock = threading.Lock()


def compile_cached(sha: str, files) -> CompiledVersion:
    """The compiled bundle with this hash; `files` is the bundle or a function returning it."""
    with _cache_lock:
        found = _cache.get(sha)
    if found is None:
        found = compile_files(files() if callable(files) else files)
        with _cache_lock:
            _cache[sha] = found
    return found


_by_id: dict[tuple[str, int], CompiledVersion] = {}


def compiled(session: Session, version_id: int) -> CompiledVersion:
    """The compiled version; versions never change, so each process looks each one up once."""
    key = (str(session.get_bind().url), version_id)
    found = _by_id.get(key)
    if found is None:
        found = _by_id[key] = _compiled_from_row(session, version_id)
    return found


def _compiled_from_row(session: Session, version_id: int) -> CompiledVersion:
    row = session.execute(select(ProcessVersion.sha256, ProcessVersion.number)
                          .where(ProcessVersion.id == version_id)).first()
    if row is None:
        raise LookupError(f"process version {version_id} does not exist")
    sha, number = row
    found = compile_cached(sha, lambda: session.scalar(select(ProcessVersion.files).where(ProcessVersion.id == version_id)))
    if found.id == version_id and found.number == number:
        return found
    return dataclasses.replace(found, id=version_id, number=number)


def forget_database(url: str) -> None:
    """Drop the per-database lookups of a database that is gone (the studio's dry run)."""
    for key in [key for key in _by_id if key[0] == url]:
        _by_id.pop(key, None)


def latest_version(session: Session, bundle: str = BUNDLE) -> ProcessVersion | None:
    return session.scalars(
        select(ProcessVersion).where(ProcessVersion.bundle == bundle).order_by(ProcessVersion.number.desc()).limit(1)
    ).first()


def publish(session: Session, files: dict[str, str], *, note: str, by: str, now: datetime,
            bundle: str = BUNDLE) -> tuple[ProcessVersion, bool]:
    """Validate and publish; returns (version, created). Publishing the same files as the latest
    version is a no-op, so `casereview init` can run any number of times."""
    sha = bundle_sha256(files)
    latest = latest_version(session, bundle)
    if latest is not None and latest.sha256 == sha:
        return latest, False
    compile_cached(sha, files)
    number = (session.scalar(select(func.max(ProcessVersion.number)).where(ProcessVersion.bundle == bundle)) or 0) + 1
    row = ProcessVersion(bundle=bundle, number=number, files=files, sha256=sha, note=note, published_by=by,
                         published_at=now)
    session.add(row)
    session.flush()
    return row, True
